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
        # Django stores UTC text there. SQLite keeps times as integer milliseconds, so whole
        # seconds plus the "SS.SSS" field is exact (julianday's double is off by ~40 us, which
        # would put a reading exactly 48 h old on either side of a window's edge). "%%%%" is
        # "%%" after the template and "%" after the backend's placeholder conversion.
        template = (
            "(CAST(strftime('%%%%s', %(expressions)s) AS REAL)"
            " - CAST(strftime('%%%%S', %(expressions)s) AS REAL)"
            " + CAST(strftime('%%%%f', %(expressions)s) AS REAL))"
        )
        return self.as_sql(compiler, connection, template=template, **extra)
