"""The population page reads the roll-up tables; these tests write observation sets, care
teams and SpO2 scales straight to the tables, past the ingest path and the catch-up job that
keep the roll-ups current in service. So the page's source is rolled up again from the rows
each time a page or export reads it (the raw selectors, called directly, need nothing)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.utils import timezone

from medai_site.patients.models import CareTeamMembership, Patient
from remote_care.analytics import dashboard
from remote_care.analytics.services import analytics_rollup_rebuild
from remote_care.models import Monitoring, Observation


def _inputs() -> int:
    """A fingerprint of every row and column the population roll-ups are made of (small
    test data: read in full), and of today (age bands follow the date)."""
    return hash(
        (
            timezone.localdate(),
            tuple(
                Observation.objects.order_by("pk").values_list(
                    "pk", "patient_id", "taken_at", "news2_total", "news2_partial", "news2"
                )
            ).__repr__(),
            tuple(Patient.objects.order_by("pk").values_list("pk", "sex", "birth_date")),
            tuple(Monitoring.objects.order_by("pk").values_list("patient_id", "spo2_scale")),
            tuple(
                CareTeamMembership.objects.order_by("pk").values_list(
                    "patient_id", "user_id", "role"
                )
            ),
        )
    )


@pytest.fixture(autouse=True)
def rollups(request, monkeypatch):
    """``rollups.auto = False`` stops the rebuild on read (to count the page's own queries
    after an explicit ``analytics_rollup_rebuild()``)."""
    if "django_db_setup" not in request.fixturenames:
        return SimpleNamespace(auto=False)
    state = SimpleNamespace(auto=True, built=None)
    real = dashboard.population_source

    def current() -> dashboard.Source:
        source = real()
        if state.auto and source is dashboard.ROLLUPS:
            # Rebuilt only when what the roll-ups are made of changed since the last read:
            # the tests read many pages of one population.
            seen = _inputs()
            if seen != state.built:
                analytics_rollup_rebuild()
                state.built = seen
        return source

    monkeypatch.setattr(dashboard, "population_source", current)
    return state
