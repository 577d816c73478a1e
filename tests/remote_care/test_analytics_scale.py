"""The population dashboard on a million observation sets (PostgreSQL, seeded in SQL with
generate_series in a few seconds): every query returns within a generous bound, and the
number of queries does not grow with the data. Timings of record are in bench/analytics.py."""

from __future__ import annotations

import time
from datetime import date

import pytest
from django.db import connection

from bench.population_seed import seed_population
from remote_care.analytics import (
    DASHBOARD_QUERIES,
    Dimension,
    PopulationFilter,
    population_dashboard,
)

# Far above the measured figures (bench/analytics.py), so only a lost index or a per-row
# Python loop trips it, not a busy CI machine.
BOUND_S = 5.0


@pytest.mark.django_db
def test_dashboard_on_a_million_observations(users, django_assert_max_num_queries):
    with connection.cursor() as cursor:
        seeded = seed_population(
            cursor,
            observations=1_000_000,
            patients=1_000,
            days=30,
            end=date(2026, 3, 31),
            clinician_ids=[users.clinician_a.pk, users.clinician_b.pk],
            wide=False,
        )
    assert seeded.alerts > 10_000
    f = PopulationFilter(start=seeded.start, end=seeded.end, by=Dimension.AGE, period="day")
    timings = {}
    for name, query in DASHBOARD_QUERIES.items():
        began = time.perf_counter()
        query(user=users.researcher, f=f)
        timings[name] = time.perf_counter() - began
    slow = {name: round(s, 2) for name, s in timings.items() if s > BOUND_S}
    assert not slow, f"dashboard queries over {BOUND_S} s on 1M observations: {slow}"

    with django_assert_max_num_queries(13):
        dashboard = population_dashboard(user=users.researcher, f=f)
    assert dashboard.summary.sets == 1_000_000
    assert dashboard.summary.patients == 1_000
    assert sum(c.patients for c in dashboard.cohorts) >= 1_000
    # A clinician's scope (half of the patients) goes through the same bounded queries.
    began = time.perf_counter()
    with django_assert_max_num_queries(13):
        mine = population_dashboard(user=users.clinician_a, f=f)
    assert time.perf_counter() - began < 6 * BOUND_S
    assert mine.summary.patients == 500
