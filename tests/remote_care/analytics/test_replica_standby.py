"""Population analytics against a real streaming standby (PostgreSQL hot standby, physical
replication): the researcher's figures come from the standby and equal the primary's once it
has replayed; while replay is paused the page still answers, from the standby's older copy,
and says how old ("data as of" = the last replayed commit), never newer than it is.

Runs only where the "replica" alias is a server in recovery: bin/replica-standby-test starts
a private primary and a standby of it (pg_basebackup -R, streaming) on free ports and runs
this file with DATABASE_URL and MEDAI_DATABASE_REPLICA_URL pointing at them. Skipped
elsewhere (the test settings' replica is then a mirror of the primary, test_replica.py)."""

from __future__ import annotations

import time
from dataclasses import asdict

import pytest
from django.db import connections
from django.utils import timezone

from remote_care.analytics.dashboard import ROLLUPS, population_dashboard
from remote_care.analytics.filters import PopulationFilter
from remote_care.analytics.services import analytics_rollup_rebuild
from remote_care.models import Device, Observation
from tests.remote_care.analytics.population_data import D1, D2, D8, at, build_population
from tests.remote_care.factories import ObservationFactory, news2_summary

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])
F = PopulationFilter(start=D1, end=D8)


def _one(alias: str, sql: str) -> object:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


@pytest.fixture
def standby():
    if connections["replica"].vendor != "postgresql" or not _one(
        "replica", "SELECT pg_is_in_recovery()"
    ):
        pytest.skip("the replica alias is not a streaming standby (bin/replica-standby-test)")
    yield
    _one("replica", "SELECT pg_wal_replay_resume()::text")


def _caught_up(timeout: float = 30) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    target = _one("default", "SELECT pg_current_wal_lsn()::text")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lag = _one("replica", f"SELECT pg_wal_lsn_diff('{target}', pg_last_wal_replay_lsn())")
        if lag is not None and lag <= 0:
            return
        time.sleep(0.05)
    raise AssertionError("the standby did not catch up in time")


def _figures(dashboard) -> dict:
    return {k: v for k, v in asdict(dashboard).items() if k != "read"}


def _on_primary(user) -> dict:
    from django.test import override_settings

    with override_settings(MEDAI_ANALYTICS_DATABASE="default"):
        return _figures(population_dashboard(user=user, f=F, source=ROLLUPS))


def test_the_researchers_page_reads_the_standby_and_says_how_fresh(users, standby):
    population = build_population(users)
    analytics_rollup_rebuild()
    _caught_up()
    dashboard = population_dashboard(user=users.researcher, f=F, source=ROLLUPS)
    assert dashboard.read is not None
    assert dashboard.read.alias == "replica" and dashboard.read.standby
    assert dashboard.read.as_of is not None and dashboard.read.as_of <= timezone.now()
    assert dashboard.summary.sets > 0
    assert _figures(dashboard) == _on_primary(users.researcher)

    # Replay paused: the primary moves on, the page still answers from the older copy and
    # its "as of" stays before the new commit.
    _one("replica", "SELECT pg_wal_replay_pause()::text")
    before = _figures(dashboard)
    device = Device.objects.filter(patient=population.patients["F1"]).first()
    written_at = timezone.now()
    for minute in range(3):
        ObservationFactory(
            device=device,
            taken_at=at(D2, 15).replace(minute=minute),
            news2_total=9,
            news2=news2_summary(9),
        )
    analytics_rollup_rebuild()
    lagging = population_dashboard(user=users.researcher, f=F, source=ROLLUPS)
    assert lagging.read is not None and lagging.read.standby
    assert lagging.read.as_of is not None and lagging.read.as_of < written_at
    assert _figures(lagging) == before
    assert _on_primary(users.researcher) != before

    _one("replica", "SELECT pg_wal_replay_resume()::text")
    _caught_up()
    fresh = population_dashboard(user=users.researcher, f=F, source=ROLLUPS)
    assert fresh.read is not None and fresh.read.as_of is not None
    assert fresh.read.as_of >= written_at
    assert _figures(fresh) == _on_primary(users.researcher)
    assert Observation.objects.using("replica").count() == Observation.objects.count()


def test_the_page_on_a_standby_writes_its_audit_event_to_the_primary(users, standby):
    from medai_site.audit.models import AuditEvent
    from tests.support.clients import login

    build_population(users)
    analytics_rollup_rebuild()
    _caught_up()
    response = login(users.researcher).get(
        "/remote-care/analytics/", {"start": "2026-03-02", "end": "2026-03-09"}
    )
    assert response.status_code == 200
    assert 'data-read-source="replica"' in response.content.decode()
    assert "analytics replica" in response.content.decode()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.PATIENT_LIST_VIEWED).count() == 1
