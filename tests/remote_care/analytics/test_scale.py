"""The population dashboard on 200,000 observation sets (PostgreSQL, seeded in SQL with
generate_series in seconds; bench/analytics.py goes to 10M): the figures are right and the number of queries does not grow
with the data. Timings are measured by bench/analytics.py, never asserted here (a wall-clock
bound in a test only measures how busy the machine is)."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection

from bench.population_seed import seed_population
from medai_site.patients.models import CareTeamMembership
from remote_care.analytics.dashboard import population_dashboard
from remote_care.analytics.filters import Dimension, PopulationFilter
from remote_care.analytics.services import analytics_rollup_rebuild

#: As tests/remote_care/analytics/test_dashboard.py's bound on the roll-ups: the selectors and
#: the differencing guard.
MAX_QUERIES = 30
#: Enough sets that a per-row query would show in the count; a million adds only seed time.
SETS = 200_000


@pytest.mark.django_db
def test_dashboard_on_many_observations(users, django_assert_max_num_queries, rollups):
    with connection.cursor() as cursor:
        # February: GMT, so the UTC-spaced sets fall in the site-time range exactly.
        seeded = seed_population(
            cursor,
            observations=SETS,
            patients=1_000,
            days=28,
            end=date(2026, 2, 28),
            clinician_ids=[users.clinician_a.pk, users.clinician_b.pk],
            wide=False,
        )
    f = PopulationFilter(start=seeded.start, end=seeded.end, by=Dimension.AGE, period="week")
    # Rolled up as the back-fill command does after a bulk load; the page then reads only
    # the roll-ups (its queries counted alone).
    rollups.auto = False
    analytics_rollup_rebuild()

    with django_assert_max_num_queries(MAX_QUERIES):
        dashboard = population_dashboard(user=users.researcher, f=f)
    assert dashboard.summary.sets == SETS
    assert dashboard.summary.patients == 1_000
    assert dashboard.summary.patient_days == 28_000
    # Ages are taken on each day, so a birthday inside the range puts a patient in two age
    # cohorts; each patient-day is in exactly one.
    assert sum(c.patient_days for c in dashboard.cohorts) == 28_000
    assert sum(b.sets for b in dashboard.bands) == SETS

    # A care-team filter: its atoms are the patients' whole care teams (regions of their
    # Venn diagram), read from a join and, for the one patient in ten with a second member
    # of the team (a member, not responsible), from a per-patient subquery.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO patients_careteammembership (patient_id, user_id, role, added_at)
            SELECT m.patient_id, %s, 'member', now()
            FROM patients_careteammembership m
            WHERE m.user_id = %s AND m.patient_id %% 10 = 0
            """,
            [users.clinician_b.pk, users.clinician_a.pk],
        )
    analytics_rollup_rebuild()  # care teams changed: the back-fill rolls the keys up again
    f = PopulationFilter(
        start=seeded.start, end=seeded.end, by=Dimension.TEAM, team=users.clinician_b.pk
    )
    with django_assert_max_num_queries(MAX_QUERIES):
        dashboard = population_dashboard(user=users.researcher, f=f)
    in_b_team = CareTeamMembership.objects.filter(user=users.clinician_b).count()
    assert 500 < in_b_team < 1_000  # B's half, and some of A's with B as a member
    assert dashboard.summary.patients == in_b_team
    assert not dashboard.refused
