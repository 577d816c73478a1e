"""The observation table partitioned by month on PostgreSQL (migration 0012): rows land in their
month, DEFAULT catches the rest, ingest still stores a resent set once, months are created ahead
idempotently and old ones detached for archiving; the ORM still protects referenced sets."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import ProtectedError
from django.utils import timezone

from medai_site.celery import app
from remote_care.devices import partitions
from remote_care.devices.partitions import (
    PartitionInUse,
    month_after,
    month_start,
    observation_partitions_detach,
    observation_partitions_ensure,
    observation_partitions_list,
    observations_partitioned,
    partition_name,
)
from remote_care.devices.services import device_register, observations_ingest
from remote_care.devices.tasks import observation_partitions_ensure_task
from remote_care.models import Observation
from tests.platform.factories import patient_for
from tests.remote_care.factories import AlertFactory, ObservationFactory, RiskScoreFactory

pytestmark = pytest.mark.django_db
OLD = dt.datetime(2001, 3, 15, 12, tzinfo=dt.UTC)  # long before any month the migration made
ARCHIVED = dt.datetime(1999, 6, 15, 12, tzinfo=dt.UTC)  # rows present when 0012 runs


@pytest.fixture
def device(users):
    patient = patient_for(users.clinician_a)
    return device_register(patient=patient, label="kit", registered_by=users.clinician_a).device


def home(observation: Observation) -> str:
    """The partition a stored set's row is in."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM remote_care_observation WHERE id = %s",
            [observation.pk],
        )
        return cursor.fetchone()[0]


def this_month() -> dt.date:
    return month_start(timezone.now().astimezone(dt.UTC).date())


def test_the_table_is_partitioned_by_range_of_taken_at():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.partstrat, a.attname FROM pg_partitioned_table p JOIN pg_attribute a "
            "ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0] "
            "WHERE p.partrelid = 'remote_care_observation'::regclass"
        )
        assert cursor.fetchall() == [("r", "taken_at")]


def test_a_set_lands_in_its_month_and_an_old_one_in_default(device):
    recent = ObservationFactory(device=device)
    old = ObservationFactory(device=device, taken_at=OLD)
    assert home(recent) == partition_name(this_month())
    assert home(old) == partitions.DEFAULT_PARTITION
    assert set(Observation.objects.values_list("pk", flat=True)) == {recent.pk, old.pk}


def test_a_resent_batch_across_two_months_and_default_stores_nothing_twice(device):
    boundary = dt.datetime.combine(this_month(), dt.time(), dt.UTC)
    times = [boundary - dt.timedelta(minutes=2), boundary + dt.timedelta(minutes=2), OLD]
    observation_partitions_ensure(months_ahead=0, today=times[0].date())  # last month
    items = [{"taken_at": t, "heart_rate": 72.0} for t in times]
    first = observations_ingest(device=device, items=items)
    again = observations_ingest(device=device, items=[dict(i) for i in items])
    assert len(first.stored) == 3
    assert again.stored == [] and again.duplicates == [0, 1, 2]
    rows = Observation.objects.filter(device=device)
    assert {home(o) for o in rows} == {
        partition_name(month_start(times[0].date())),
        partition_name(this_month()),
        partitions.DEFAULT_PARTITION,
    }


def test_create_ahead_is_idempotent_and_moves_rows_out_of_default(device):
    stray = ObservationFactory(device=device, taken_at=OLD)
    created = observation_partitions_ensure(months_ahead=1, today=OLD.date())
    assert created == [partition_name(dt.date(2001, 3, 1)), partition_name(dt.date(2001, 4, 1))]
    assert observation_partitions_ensure(months_ahead=1, today=OLD.date()) == []
    assert home(stray) == partition_name(dt.date(2001, 3, 1))
    assert Observation.objects.get(pk=stray.pk).taken_at == OLD
    # The migration made this month and three ahead; the beat's call finds them all.
    assert observation_partitions_ensure(months_ahead=3) == []


def test_detach_removes_the_month_from_queries_and_leaves_a_table(device):
    observation_partitions_ensure(months_ahead=0, today=OLD.date())
    kept = ObservationFactory(device=device)
    archived = ObservationFactory(device=device, taken_at=OLD)
    name = partition_name(dt.date(2001, 3, 1))
    call_command("observations_partitions", "detach", "--before", "2001-04")
    assert list(Observation.objects.values_list("pk", flat=True)) == [kept.pk]
    listed = {p.name: p for p in observation_partitions_list()}
    assert listed[name].attached is False
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {name}")  # noqa: S608 (a partition name)
        assert cursor.fetchall() == [(archived.pk,)]
    # Idempotent, and the detached month is not recreated under the archive's feet.
    assert observation_partitions_detach(before=dt.date(2001, 4, 1)) == []
    assert observation_partitions_ensure(months_ahead=0, today=OLD.date()) == []


@pytest.mark.parametrize("factory", [AlertFactory, RiskScoreFactory])
def test_detach_refuses_a_month_still_referenced_unless_forced(device, factory):
    observation_partitions_ensure(months_ahead=0, today=OLD.date())
    factory(observation=ObservationFactory(device=device, taken_at=OLD))
    with pytest.raises(PartitionInUse, match="2001_03"):
        observation_partitions_detach(before=dt.date(2001, 4, 1))
    assert Observation.objects.filter(taken_at=OLD).exists()
    assert observation_partitions_detach(before=dt.date(2001, 4, 1), force=True) == [
        partition_name(dt.date(2001, 3, 1))
    ]
    assert not Observation.objects.filter(taken_at=OLD).exists()


def test_detach_with_drop_leaves_no_table(device):
    observation_partitions_ensure(months_ahead=0, today=OLD.date())
    ObservationFactory(device=device, taken_at=OLD)
    call_command("observations_partitions", "detach", "--before", "2001-04", "--drop")
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [partition_name(dt.date(2001, 3, 1))])
        assert cursor.fetchone() == (None,)


@pytest.mark.parametrize(
    ("before", "message"),
    [("2001-4", "YYYY-MM"), ("march", "YYYY-MM"), (None, "current or a future month")],
)
def test_detach_refuses_bad_months_with_a_message(before, message):
    if before is None:
        before = f"{month_after(this_month()):%Y-%m}"
    with pytest.raises(CommandError, match=message):
        call_command("observations_partitions", "detach", "--before", before)
    assert partition_name(this_month()) in {p.name for p in observation_partitions_list()}


def test_the_orm_still_protects_a_set_with_an_alert_and_cascades_risk_scores(device):
    observation = ObservationFactory(device=device)
    alert = AlertFactory(observation=observation)
    with pytest.raises(ProtectedError):
        observation.delete()
    alert.delete()
    score = RiskScoreFactory(observation=observation)
    observation.delete()
    assert not type(score).objects.filter(pk=score.pk).exists()


def test_on_sqlite_the_plain_table_is_left_alone(monkeypatch):
    monkeypatch.setattr(connection, "vendor", "sqlite")
    assert observation_partitions_list() == []
    assert observation_partitions_ensure(months_ahead=3) == []
    with pytest.raises(CommandError, match="not partitioned"):
        call_command("observations_partitions", "detach", "--before", "2001-04")


def test_the_beat_creates_the_coming_months_every_day():
    entry = settings.CELERY_BEAT_SCHEDULE["observation-partitions-ensure"]
    assert entry["task"] in app.tasks
    assert entry["task"] == observation_partitions_ensure_task.name
    assert entry["schedule"] <= 86400
    # The migration made this month and the next three: the task finds nothing to do.
    assert observation_partitions_ensure_task() == []


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_existing_rows_and_keeps_ids_and_the_sequence(users):
    """0012 run on a table with rows (and 0011 with an alert's foreign key), then reversed
    and run again: every row keeps its id, lands in its month, and new ids continue."""
    patient = patient_for(users.clinician_a)
    device = device_register(patient=patient, label="kit", registered_by=users.clinician_a).device
    before = ("remote_care", "0010_observation_keys_without_own_indexes")
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("remote_care")
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    try:
        assert not observations_partitioned()
        sets = [
            ObservationFactory(device=device, taken_at=ARCHIVED + dt.timedelta(days=d))
            for d in (0, 40)
        ]
        sets.append(ObservationFactory(device=device))
        AlertFactory(observation=sets[-1])
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)
    assert observations_partitioned()
    # Months from the earliest stored one (June 1999) on, so no old set is left in DEFAULT.
    assert [home(o) for o in sets] == [
        partition_name(dt.date(1999, 6, 1)),
        partition_name(dt.date(1999, 7, 1)),
        partition_name(this_month()),
    ]
    fresh = ObservationFactory(device=device, taken_at=ARCHIVED - dt.timedelta(days=400))
    assert fresh.pk > max(o.pk for o in sets)
    assert home(fresh) == partitions.DEFAULT_PARTITION
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' "
            "AND confrelid = 'remote_care_observation'::regclass"
        )
        assert cursor.fetchone() == (0,)
    # The 1999 months outlive this test's flush: drop them so no later test meets them.
    observation_partitions_detach(before=dt.date(2000, 1, 1), drop=True, force=True)
