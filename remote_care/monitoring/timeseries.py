"""Database expressions for vital-sign time series, shared by the charts, the roll-ups and the
risk sweep: timestamps as epoch seconds, read without building a datetime per row."""

from __future__ import annotations

from typing import Any

from django.db.models import FloatField, Func


class EpochSeconds(Func):
    """A datetime column as float seconds since 1970-01-01 UTC (PostgreSQL and SQLite), exact
    to the microsecond on PostgreSQL and to the millisecond on SQLite."""

    output_field = FloatField()
    arity = 1

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = "CAST(EXTRACT(EPOCH FROM %(expressions)s) AS double precision)"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Django stores UTC text there and SQLite resolves it to whole milliseconds; julianday's
        # double is off by up to ~40 us, so rounding to the millisecond gives them back exactly
        # (a reading exactly 48 h old must fall outside a window, not on either side at random).
        # One julianday call per row: a third of the cost of building it from strftime fields.
        template = "(ROUND((julianday(%(expressions)s) - 2440587.5) * 86400000.0) / 1000.0)"
        return self.as_sql(compiler, connection, template=template, **extra)


# --- Roll-ups -----------------------------------------------------------------------------------

#: The rolled-up series: the vitals chart's key -> its Observation column.
ROLLUP_VITALS: dict[str, str] = {
    "heart_rate": "heart_rate",
    "spo2": "spo2",
    "respiratory_rate": "respiratory_rate",
    "temperature": "temperature",
    "systolic_bp": "systolic_bp",
    "diastolic_bp": "diastolic_bp",
    "news2": "news2_total",
}
#: Seconds per bucket of each roll-up level.
BUCKET_SECONDS = {"minute": 60, "hour": 3600}
_COLUMNS = "patient_id, level, vital, bucket, n, total, low, high"
# The statements below are built from the models' table names and constants (noqa: S608);
# every value (patients, times) goes as a query parameter.
# A touched bucket is recomputed whole and replaced, never added to: a batch rolled up twice
# (a resent batch, a sweep after the ingest hook) leaves the same row.
_REPLACE = (
    "ON CONFLICT (patient_id, level, bucket, vital) DO UPDATE SET n = excluded.n, "
    "total = excluded.total, low = excluded.low, high = excluded.high"
)


def _patients_sql(vendor: str, n_patients: int) -> str:
    return "= ANY(%s)" if vendor == "postgresql" else f"IN ({', '.join(['%s'] * n_patients)})"


def rollup_minutes_sql(
    *, vendor: str, rollups: str, observations: str, n_patients: int
) -> tuple[str, int]:
    """INSERT ... SELECT ... ON CONFLICT DO UPDATE that recomputes the minute roll-ups of some
    patients' readings taken in [start, end) from the raw rows; returns (sql, how many times
    its parameters (patients, start, end) repeat). PostgreSQL unpivots the vitals with one
    LATERAL VALUES scan; SQLite with one UNION ALL branch per vital."""
    patients = _patients_sql(vendor, n_patients)
    if vendor == "postgresql":
        pairs = ", ".join(
            f"('{key}', o.{column}::double precision)" for key, column in ROLLUP_VITALS.items()
        )
        sql = (
            f"INSERT INTO {rollups} ({_COLUMNS}) "  # noqa: S608
            "SELECT o.patient_id, 'minute', v.vital, "
            "date_trunc('minute', o.taken_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', "
            "count(*), sum(v.value), min(v.value), max(v.value) "
            f"FROM {observations} o CROSS JOIN LATERAL (VALUES {pairs}) AS v(vital, value) "
            f"WHERE o.patient_id {patients} AND o.taken_at >= %s AND o.taken_at < %s "
            "AND v.value IS NOT NULL GROUP BY 1, 3, 4 " + _REPLACE
        )
        return sql, 1
    branches = " UNION ALL ".join(
        f"SELECT patient_id, '{key}' AS vital, "  # noqa: S608
        f"strftime('%%Y-%%m-%%d %%H:%%M:00', taken_at) AS bucket, {column} AS value "
        f"FROM {observations} WHERE patient_id {patients} AND taken_at >= %s AND taken_at < %s "
        f"AND {column} IS NOT NULL"
        for key, column in ROLLUP_VITALS.items()
    )
    sql = (
        f"INSERT INTO {rollups} ({_COLUMNS}) "  # noqa: S608
        "SELECT patient_id, 'minute', vital, bucket, count(*), sum(value), min(value), "
        f"max(value) FROM ({branches}) AS u "
        # "WHERE true": SQLite's upsert after INSERT ... SELECT needs a WHERE to parse.
        "WHERE true GROUP BY patient_id, vital, bucket " + _REPLACE
    )
    return sql, len(ROLLUP_VITALS)


def rollup_hours_sql(*, vendor: str, rollups: str, n_patients: int) -> str:
    """INSERT ... SELECT ... ON CONFLICT DO UPDATE that recomputes the hour roll-ups of some
    patients in [start, end) (whole hours) by merging their minute roll-ups: counts and sums
    added, the minimum of the minima and the maximum of the maxima. Parameters: patients,
    start, end."""
    patients = _patients_sql(vendor, n_patients)
    hour = (
        "date_trunc('hour', bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
        if vendor == "postgresql"
        else "strftime('%%Y-%%m-%%d %%H:00:00', bucket)"
    )
    return (
        f"INSERT INTO {rollups} ({_COLUMNS}) "  # noqa: S608
        f"SELECT patient_id, 'hour', vital, {hour}, sum(n), sum(total), min(low), max(high) "
        f"FROM {rollups} WHERE level = 'minute' AND patient_id {patients} "
        "AND bucket >= %s AND bucket < %s GROUP BY 1, 3, 4 " + _REPLACE
    )
