"""Running queued jobs in the test process, the way a Celery worker would."""

from __future__ import annotations

from medai_site.jobs.kinds import get_kind
from medai_site.jobs.models import Job
from medai_site.jobs.runtime import job_execute


def job_run_in_process(job: Job | int) -> Job:
    """Run one delivery of a queued job (by row or primary key) with its kind's own job
    function, as a worker would; returns the job reloaded with its final status."""
    row = job if isinstance(job, Job) else Job.objects.get(pk=job)
    job_execute(job_id=row.pk, fn=get_kind(row.kind).task.job_function)
    row.refresh_from_db()
    return row
