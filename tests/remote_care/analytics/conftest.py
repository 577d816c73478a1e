"""The population page reads the roll-up tables; these tests write observation sets, care
teams and SpO2 scales straight to the tables, past the ingest path and the catch-up job that
keep the roll-ups current in service. So the page's source is rolled up again from the rows
each time a page or export reads it (the raw selectors, called directly, need nothing)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from remote_care.analytics import dashboard
from remote_care.analytics.services import analytics_rollup_rebuild


@pytest.fixture(autouse=True)
def rollups(request, monkeypatch):
    """``rollups.auto = False`` stops the rebuild on read (to count the page's own queries
    after an explicit ``analytics_rollup_rebuild()``)."""
    if "django_db_setup" not in request.fixturenames:
        return SimpleNamespace(auto=False)
    state = SimpleNamespace(auto=True)
    real = dashboard.population_source

    def current() -> dashboard.Source:
        source = real()
        if state.auto and source is dashboard.ROLLUPS:
            analytics_rollup_rebuild()
        return source

    monkeypatch.setattr(dashboard, "population_source", current)
    return state
