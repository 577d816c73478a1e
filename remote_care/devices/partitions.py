"""The monthly partitions of the observation table on PostgreSQL (migration 0012): listing them,
creating the coming months ahead of time, and detaching old months for archiving.

On SQLite (the embedded default) the table is a plain table: listing returns nothing, creating
does nothing, and detaching refuses with a clear message.
"""

# ruff: noqa: S608  (the SQL names only this module's table names and partition names it made)

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

TABLE = "remote_care_observation"
DEFAULT_PARTITION = f"{TABLE}_default"
MONTH_NAME = re.compile(rf"^{TABLE}_p(\d{{4}})_(\d{{2}})$")
# The rows that name an observation by id (no database foreign key since migration 0011).
REFERENCING_TABLES = ("remote_care_alert", "remote_care_riskscore", "remote_care_waveform")


class PartitioningUnavailable(Exception):
    """The database has no partitioned observation table (SQLite)."""


class PartitionInUse(Exception):
    """A month to detach still has alerts, risk scores or waveforms pointing into it."""


@dataclass(frozen=True)
class ObservationPartition:
    """One month's table (``month`` None for the DEFAULT partition); ``attached`` False for
    a month detached and kept as a plain table, waiting to be archived."""

    name: str
    month: dt.date | None
    attached: bool
    rows: int
    bytes: int


def month_start(day: dt.date) -> dt.date:
    """The first day of ``day``'s month."""
    return day.replace(day=1)


def month_after(month: dt.date) -> dt.date:
    """The first day of the month after ``month``."""
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def partition_name(month: dt.date) -> str:
    """The table name of ``month``'s partition."""
    return f"{TABLE}_p{month:%Y_%m}"


def _utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def observations_partitioned() -> bool:
    """True when the observation table is partitioned (PostgreSQL after migration 0012)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", [TABLE]
        )
        return cursor.fetchone() is not None


def observation_partitions_list() -> list[ObservationPartition]:
    """Every month's table, attached or detached, oldest first, then DEFAULT; empty when the
    table is not partitioned. Row counts are the planner's estimates (fast, after ANALYZE)."""
    if not observations_partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid "
            "AND i.inhparent = to_regclass(%s)), greatest(c.reltuples, 0)::bigint, "
            "pg_total_relation_size(c.oid) FROM pg_class c "
            "WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace "
            "AND (c.relname = %s OR c.relname ~ %s) ORDER BY c.relname",
            [TABLE, DEFAULT_PARTITION, MONTH_NAME.pattern],
        )
        rows = cursor.fetchall()
    partitions = []
    for name, attached, count, size in rows:
        match = MONTH_NAME.match(name)
        month = dt.date(int(match[1]), int(match[2]), 1) if match else None
        partitions.append(ObservationPartition(name, month, attached, count, size))
    return sorted(partitions, key=lambda p: (p.month is None, p.month or dt.date.min))


@transaction.atomic
def observation_partitions_ensure(
    *, months_ahead: int = 3, today: dt.date | None = None
) -> list[str]:
    """Create the partitions of this month and the next ``months_ahead`` that are missing,
    moving any of their rows out of DEFAULT first; idempotent. Returns the names created.
    A month whose table exists but is detached is left alone (logged): it is being archived."""
    if months_ahead < 0:
        raise ValueError("months_ahead must be 0 or more.")
    if not observations_partitioned():
        return []
    month = month_start(today or timezone.now().astimezone(dt.UTC).date())
    wanted = [month]
    for _ in range(months_ahead):
        wanted.append(month_after(wanted[-1]))
    existing = {p.name: p for p in observation_partitions_list()}
    missing = []
    for month in wanted:
        found = existing.get(partition_name(month))
        if found is None:
            missing.append(month)
        elif not found.attached:
            logger.warning("Observation partition %s is detached; not recreating it.", found.name)
    if not missing:
        return []
    created = []
    with connection.cursor() as cursor:
        # Creating a partition takes this lock anyway; taking it first keeps an insert from
        # landing in DEFAULT between moving that month's rows out and creating its table.
        cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
        for month in missing:
            name = partition_name(month)
            cursor.execute("SELECT to_regclass(%s)", [name])
            if cursor.fetchone()[0] is not None:
                continue
            bounds = [_utc(month), _utc(month_after(month))]
            # PostgreSQL refuses a new partition while DEFAULT holds rows of its range.
            cursor.execute(
                "CREATE TEMP TABLE observation_partition_moving ON COMMIT DROP AS "
                f"SELECT * FROM {DEFAULT_PARTITION} WHERE taken_at >= %s AND taken_at < %s",
                bounds,
            )
            cursor.execute(
                f"DELETE FROM {DEFAULT_PARTITION} WHERE taken_at >= %s AND taken_at < %s",
                bounds,
            )
            moved = cursor.rowcount
            # DDL takes no parameters; the bounds are dates this function made.
            cursor.execute(
                f"CREATE TABLE {name} PARTITION OF {TABLE} FOR VALUES "
                f"FROM ('{month.isoformat()} 00:00+00') "
                f"TO ('{month_after(month).isoformat()} 00:00+00')"
            )
            cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM observation_partition_moving")
            cursor.execute("DROP TABLE observation_partition_moving")
            if moved:
                logger.info("Moved %d observation sets from DEFAULT into %s.", moved, name)
            created.append(name)
    return created


@transaction.atomic
def observation_partitions_detach(
    *, before: dt.date, drop: bool = False, force: bool = False
) -> list[str]:
    """Detach every attached month before ``before`` (a month's first day, not after the
    current month), leaving each a plain table to archive, or dropping it with ``drop``.
    Refuses, detaching nothing, while alerts, risk scores or waveforms point into a month,
    unless ``force``. Idempotent: months already detached are skipped. Returns the names."""
    if not observations_partitioned():
        raise PartitioningUnavailable(
            "The observation table is not partitioned on this database (SQLite keeps a "
            "plain table); there is no month to detach."
        )
    if before.day != 1:
        raise ValueError("before must be the first day of a month.")
    current = month_start(timezone.now().astimezone(dt.UTC).date())
    if before > current:
        raise ValueError(
            f"Cannot detach the current or a future month: before must be {current:%Y-%m} "
            "or earlier."
        )
    months = [
        p
        for p in observation_partitions_list()
        if p.attached and p.month is not None and month_after(p.month) <= before
    ]
    with connection.cursor() as cursor:
        if not force:
            in_use = []
            for partition in months:
                for referencing in REFERENCING_TABLES:
                    cursor.execute(
                        f"SELECT count(*) FROM {referencing} r "
                        f"WHERE r.observation_id IN (SELECT id FROM {partition.name})"
                    )
                    (count,) = cursor.fetchone()
                    if count:
                        in_use.append(f"{partition.name}: {count} rows of {referencing}")
            if in_use:
                raise PartitionInUse(
                    "These months still have rows pointing into them, which would point at "
                    "nothing once detached: " + "; ".join(in_use)
                )
        # PostgreSQL will not detach or drop a table with deferred foreign-key checks still
        # pending from rows written earlier in the same transaction: run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for partition in months:
            cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {partition.name}")
            if drop:
                cursor.execute(f"DROP TABLE {partition.name}")
            logger.info(
                "Observation partition %s %s.", partition.name, "dropped" if drop else "detached"
            )
    return [p.name for p in months]
