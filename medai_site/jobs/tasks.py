"""Platform tasks: the sweeper (scheduled by Celery beat every 30 seconds)."""

from __future__ import annotations

from medai_site.celery import app
from medai_site.jobs.services import jobs_sweep


@app.task(name="jobs.sweep", ignore_result=True, time_limit=120, soft_time_limit=108)
def sweep() -> dict[str, list[int]]:
    """Re-enqueue stranded jobs and fail those out of attempts; idempotent."""
    report = jobs_sweep()
    return {"requeued": report.requeued, "resent": report.resent, "failed": report.failed}
