"""Population analytics on a read replica: with MEDAI_ANALYTICS_DATABASE = "replica" (what
MEDAI_DATABASE_REPLICA_URL sets), the researcher's page and exports read there and every write
(the audit event, a row read there and saved) goes to the primary; a clinician's scope and
an unset replica read the primary only; an unreachable replica falls back to the primary.

The "replica" alias of the test settings is Django's test mirror: a second connection to the
same test database. It cannot see another connection's open transaction, so these tests
commit (transaction=True)."""

from __future__ import annotations

import socket
from dataclasses import asdict

import pytest
from django.db import connections, router
from django.test.utils import CaptureQueriesContext

from medai_site.audit.models import AuditEvent
from medai_site.core.replica import ReadSource, on_replica
from medai_site.core.roles import user_roles
from medai_site.patients.models import Patient
from remote_care.analytics.dashboard import ROLLUPS, population_dashboard, population_table
from remote_care.analytics.filters import PopulationFilter
from tests.remote_care.analytics.population_data import D1, D8, build_population
from tests.support.clients import login

both = pytest.mark.django_db(transaction=True, databases=["default", "replica"])
URL = "/remote-care/analytics/"
RANGE = {"start": "2026-03-02", "end": "2026-03-09"}
F = PopulationFilter(start=D1, end=D8)


@pytest.fixture
def replica(settings):
    settings.MEDAI_ANALYTICS_DATABASE = "replica"


def _figures(dashboard) -> dict:
    return {k: v for k, v in asdict(dashboard).items() if k != "read"}


def _queries(alias: str) -> CaptureQueriesContext:
    return CaptureQueriesContext(connections[alias])


@both
def test_researchers_figures_are_read_on_the_replica_and_equal_the_primarys(users, replica):
    build_population(users)
    user_roles(users.researcher)  # the role check runs before the page (role_required)
    population_dashboard(user=users.researcher, f=F)  # roll-ups built (written on default)
    with _queries("default") as primary, _queries("replica") as copy:
        # The roll-ups named outright: the conftest's rebuild-on-read check reads default.
        on_copy = population_dashboard(user=users.researcher, f=F, source=ROLLUPS)
    assert on_copy.read is not None
    assert on_copy.read.alias == "replica"
    assert not on_copy.read.standby  # the mirror is the primary itself: data as of now
    assert len(copy.captured_queries) >= 5
    assert primary.captured_queries == []
    with _queries("replica") as copy:
        table = population_table(user=users.researcher, f=F, table="cohorts")
    assert len(copy.captured_queries) >= 1

    on_primary = population_dashboard(user=users.researcher, f=F)
    on_primary_table = population_table(user=users.researcher, f=F, table="cohorts")
    assert on_copy.read.alias == "replica"
    assert _figures(on_copy) == _figures(population_dashboard(user=users.researcher, f=F))
    assert table == on_primary_table
    assert on_primary.summary.sets > 0


@both
def test_without_a_replica_nothing_reads_it(users):
    build_population(users)
    with _queries("replica") as copy:
        dashboard = population_dashboard(user=users.researcher, f=F)
        population_table(user=users.researcher, f=F, table="bands")
        response = login(users.researcher).get(URL, RANGE)
    assert copy.captured_queries == []
    assert dashboard.read == ReadSource(alias="default", as_of=dashboard.read.as_of)
    assert 'data-read-source="default"' in response.content.decode()


@both
def test_a_clinicians_care_team_scope_is_read_on_the_primary(users, replica):
    # A clinician's figures are scoped by care-team rows: a removal must take effect at
    # once, not after the replica replays it.
    build_population(users)
    with _queries("replica") as copy:
        dashboard = population_dashboard(user=users.clinician_a, f=F)
    assert copy.captured_queries == []
    assert dashboard.read is not None and dashboard.read.alias == "default"


@both
def test_the_page_reads_the_replica_and_writes_its_audit_event_to_the_primary(users, replica):
    build_population(users)
    client = login(users.researcher)
    client.get(URL, RANGE)  # roll-ups built
    with _queries("default") as primary, _queries("replica") as copy:
        response = client.get(URL, RANGE)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-read-source="replica"' in html
    assert "Data as of" in html
    assert any("remote_care_population" in q["sql"] for q in copy.captured_queries)
    assert not any(q["sql"].lstrip().upper().startswith("INSERT") for q in copy.captured_queries)
    inserts = [q["sql"] for q in primary.captured_queries if q["sql"].startswith("INSERT")]
    assert any("audit_auditevent" in sql for sql in inserts)
    assert not any("remote_care_population" in q["sql"] for q in primary.captured_queries)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.PATIENT_LIST_VIEWED).count() == 2

    with _queries("replica") as copy:
        export = client.get("/remote-care/analytics/export.csv", {**RANGE, "table": "news2"})
    assert export.status_code == 200
    assert copy.captured_queries


@both
def test_a_row_read_on_the_replica_is_saved_on_the_primary(users, replica):
    population = build_population(users)
    pk = next(iter(population.patients.values())).pk
    patient, _ = on_replica(lambda: Patient.objects.get(pk=pk))
    assert patient._state.db == "replica"
    assert router.db_for_write(Patient, instance=patient) == "default"
    assert router.allow_migrate("replica", "patients") is False
    patient.given_name = "Edited"
    with _queries("default") as primary, _queries("replica") as copy:
        patient.save(update_fields=["given_name"])
    assert [q for q in primary.captured_queries if q["sql"].startswith("UPDATE")]
    assert copy.captured_queries == []


@both
def test_an_unreachable_replica_falls_back_to_the_primary(users, replica):
    build_population(users)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    replica_settings = connections["replica"].settings_dict
    saved = replica_settings["PORT"]
    connections["replica"].close()
    replica_settings["PORT"] = closed_port
    try:
        response = login(users.researcher).get(URL, RANGE)
        dashboard = population_dashboard(user=users.researcher, f=F)
    finally:
        connections["replica"].close()
        replica_settings["PORT"] = saved
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-read-source="default"' in html
    assert "the replica did not answer" in html
    assert dashboard.read is not None and dashboard.read.fallback
    assert dashboard.summary.sets > 0
