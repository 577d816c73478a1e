"""Background work of population analytics: keeping the roll-up tables current."""

from __future__ import annotations

from medai_site.celery import app
from remote_care.analytics.services import analytics_rollup_catch_up


@app.task(
    name="remote_care.analytics_rollup_catch_up",
    ignore_result=True,
    time_limit=600,
    soft_time_limit=540,
)
def analytics_rollup_catch_up_task() -> int:
    """Roll up the observation sets added since the last run (beat, every minute);
    idempotent. Returns the patient-days written."""
    return analytics_rollup_catch_up()
