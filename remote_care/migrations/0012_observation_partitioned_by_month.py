"""On PostgreSQL, remote_care_observation becomes a table partitioned by month of taken_at.

The table is rebuilt, never altered in place (PostgreSQL cannot partition an existing table):
a new partitioned table with the same columns and identity, a DEFAULT partition (the safety net
for any date without a month of its own), one partition per month from the earliest stored
month to three months ahead; the rows are copied month by month; the old table is dropped and
the new one takes its name, its sequence's position, its constraints and its indexes (each
recreated from its own definition, as a partitioned index, so every month carries a small
index of its own and the recent months' indexes stay in memory). The primary key becomes
(id, taken_at): a partitioned table's unique keys must include the partition key. It all
runs in the migration's one transaction, so readers see the old table or the new one.

No BRIN index: the old months are the ones detached and archived
(``manage.py observations_partitions detach``), and pruning already skips them for a time
range, so a BRIN index would save nothing a query pays for.

Django's model state does not change (the columns are the same); SQLite keeps its plain table.
The reverse rebuilds a plain table the same way (primary key (id) again), so 0011's foreign
keys could come back.
"""

# ruff: noqa: S608  (the SQL names only this file's constant table and sequence names)

from __future__ import annotations

import datetime as dt

from django.db import migrations

TABLE = "remote_care_observation"
REBUILD = "remote_care_observation_rebuild"
SEQUENCE = "remote_care_observation_id_seq"
MONTHS_AHEAD = 3


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _next_month(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _rebuild(cursor, *, partitioned: bool) -> None:
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('u', 'c', 'f') ORDER BY conname",
        [TABLE],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
        "ORDER BY i.indexrelid",
        [TABLE],
    )
    indexes = [row[0].replace(" ON ONLY ", " ON ") for row in cursor.fetchall()]
    cursor.execute(f"SELECT last_value, is_called FROM {SEQUENCE}")
    last_value, is_called = cursor.fetchone()

    cursor.execute(
        f"CREATE TABLE {REBUILD} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING IDENTITY "
        "INCLUDING STORAGE INCLUDING COMMENTS)"
        + (" PARTITION BY RANGE (taken_at)" if partitioned else "")
    )
    if partitioned:
        cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {REBUILD} DEFAULT")
        cursor.execute(f"SELECT min(taken_at) FROM {TABLE}")
        (earliest,) = cursor.fetchone()
        today = dt.datetime.now(dt.UTC).date()
        month = _month_start(earliest.astimezone(dt.UTC).date() if earliest else today)
        last = _month_start(today)
        for _ in range(MONTHS_AHEAD):
            last = _next_month(last)
        while month <= last:
            upper = _next_month(month)
            cursor.execute(
                f"CREATE TABLE {TABLE}_p{month:%Y_%m} PARTITION OF {REBUILD} "
                f"FOR VALUES FROM ('{month.isoformat()} 00:00+00') "
                f"TO ('{upper.isoformat()} 00:00+00')"
            )
            # One month at a time: each INSERT .. SELECT fills one partition.
            cursor.execute(
                f"INSERT INTO {REBUILD} SELECT * FROM {TABLE} "
                "WHERE taken_at >= %s AND taken_at < %s",
                [
                    dt.datetime.combine(month, dt.time(), dt.UTC),
                    dt.datetime.combine(upper, dt.time(), dt.UTC),
                ],
            )
            month = upper
        cursor.execute(
            f"INSERT INTO {REBUILD} SELECT * FROM {TABLE} WHERE taken_at >= %s",
            [dt.datetime.combine(month, dt.time(), dt.UTC)],
        )
    else:
        cursor.execute(f"INSERT INTO {REBUILD} SELECT * FROM {TABLE}")

    # No CASCADE: a foreign key still naming the old table (0011 drops them) stops the swap.
    cursor.execute(f"DROP TABLE {TABLE}")
    cursor.execute(f"ALTER TABLE {REBUILD} RENAME TO {TABLE}")
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
    (sequence,) = cursor.fetchone()
    cursor.execute(f"ALTER SEQUENCE {sequence} RENAME TO {SEQUENCE}")
    cursor.execute("SELECT setval(%s, %s, %s)", [SEQUENCE, last_value, is_called])
    key = "id, taken_at" if partitioned else "id"
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY ({key})")
    for name, definition in constraints:
        cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
    for definition in indexes:
        cursor.execute(definition)
    cursor.execute(f"ANALYZE {TABLE}")


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        _rebuild(cursor, partitioned=True)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        _rebuild(cursor, partitioned=False)


class Migration(migrations.Migration):
    dependencies = [("remote_care", "0011_observation_references_without_db_constraint")]

    operations = [migrations.RunPython(partition, unpartition, elidable=False)]
