"""Every read of jobs, scoped to what the user may see."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from medai_site.jobs.models import Job
from medai_site.patients.models import CareTeamMembership

if TYPE_CHECKING:
    from medai_site.core.roles import AnyUser


def job_list(*, user: AnyUser, status: str | None = None) -> QuerySet[Job]:
    """The user's own jobs about no patient, plus every job about a patient in the user's care
    teams now (whoever started it); a job about a patient follows the care team, not its owner,
    so removal from the team ends access at once."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Job.objects.none()
    jobs = Job.objects.filter(
        Q(patient__isnull=True, owner=user)
        | Q(patient__in=CareTeamMembership.objects.filter(user=user).values("patient"))
    )
    if status:
        jobs = jobs.filter(status=status)
    return jobs.select_related("owner", "patient")


def job_get(*, user: AnyUser, pk: int) -> Job:
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
