"""Every read of jobs, scoped to what the user may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from medai_site.jobs.models import Job


def job_list(*, user: Any, status: str | None = None) -> QuerySet[Job]:
    """Jobs the user started, plus jobs about patients in the user's care teams."""
    if not user.is_authenticated:
        return Job.objects.none()
    jobs = Job.objects.filter(Q(owner=user) | Q(patient__memberships__user=user)).distinct()
    if status:
        jobs = jobs.filter(status=status)
    return jobs.select_related("owner", "patient")


def job_get(*, user: Any, pk: int) -> Job:
    """One job the user may see; Job.DoesNotExist otherwise (also for other people's jobs)."""
    return job_list(user=user).get(pk=pk)


def job_status_payload(job: Job) -> dict[str, Any]:
    """The JSON the live progress component renders."""
    elapsed = None
    if job.started_at:
        end = job.finished_at or timezone.now()
        elapsed = max(0.0, (end - job.started_at).total_seconds())
    return {
        "id": job.pk,
        "title": job.title,
        "status": job.status,
        "status_display": job.get_status_display(),
        "finished": job.is_finished,
        "progress": round(job.progress, 1),
        "stage": job.stage,
        "elapsed_seconds": None if elapsed is None else round(elapsed, 1),
        "attempts": job.attempts,
        "error": job.error,
        "cancel_requested": job.cancel_requested,
        "result_summary": str(job.result.get("summary", "")) if job.result else "",
        "result_url": str(job.result.get("url", "")) if job.result else "",
        # What the job reports for live display (e.g. training curves so far); pages listen
        # for the job:progress event and redraw from it.
        "live": job.live or {},
    }
