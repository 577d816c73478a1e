"""Every write to jobs: create, enqueue, claim, report progress, finish, cancel, sweep."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.jobs.kinds import get_kind
from medai_site.jobs.models import Job

if TYPE_CHECKING:
    from medai_site.core.roles import AnyUser

logger = logging.getLogger(__name__)


def job_create(
    *,
    kind: str,
    owner: Any,
    title: str,
    params: dict[str, Any] | None = None,
    patient: Any = None,
    target: models.Model | None = None,
    max_attempts: int | None = None,
    delay: float = 0,
) -> Job:
    """Create a queued job; its task goes to the broker once the caller's transaction commits,
    to run no sooner than ``delay`` seconds from now."""
    get_kind(kind)  # fail loudly, before anything is written, on an unknown kind
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind,
            title=title[:200],
            owner=owner,
            patient=patient,
            params=params or {},
            max_attempts=max_attempts or settings.MEDAI_JOB_MAX_ATTEMPTS,
            target_type=ContentType.objects.get_for_model(target) if target is not None else None,
            target_id=target.pk if target is not None else None,
            not_before=timezone.now() + timedelta(seconds=delay) if delay > 0 else None,
        )
        audit_record(
            action=AuditEvent.Action.JOB_STARTED,
            actor=owner,
            obj=job,
            patient=patient,
            detail={"kind": kind},
        )
        transaction.on_commit(lambda: job_enqueue(job_id=job.pk))
    return job


def job_enqueue(*, job_id: int, countdown: float = 0) -> bool:
    """Send a queued job's task to its queue, to run after ``countdown`` seconds or at its
    ``not_before``, whichever is later; False (job stays queued for the sweeper) if the broker
    cannot be reached or the job is no longer queued. Safe to call repeatedly."""
    job = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).first()
    if job is None:
        return False
    kind = get_kind(job.kind)
    if job.not_before is not None:
        countdown = max(countdown, (job.not_before - timezone.now()).total_seconds())
    try:
        # retry=False: when Redis is down the web request must return at once; the job row
        # is the durable record and the sweeper re-sends it. A countdown is held by the
        # worker (an ETA), with any broker, the filesystem one included.
        sent = kind.task.apply_async(
            kwargs={"job_id": job.pk},
            queue=kind.queue,
            retry=False,
            **({"countdown": countdown} if countdown > 0 else {}),
        )
    except Exception:  # kombu/redis raise several unrelated connection error types
        logger.warning(
            "broker unreachable; job %s stays queued for the sweeper", job.pk, exc_info=True
        )
        return False
    Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
        enqueued_at=timezone.now(), celery_id=sent.id
    )
    return True


def _stale_cutoff() -> Any:
    return timezone.now() - settings.MEDAI_JOB_STALE_AFTER


def job_claim(*, job_id: int, celery_id: str = "") -> Job | None:
    """Take a job for this worker with one conditional update; None when another delivery
    already runs or finished it (so a redelivered or duplicated message does nothing)."""
    now = timezone.now()
    claimable = Q(status=Job.Status.QUEUED, cancel_requested=False) | Q(
        status=Job.Status.RUNNING,
        heartbeat_at__lt=_stale_cutoff(),
        attempts__lt=F("max_attempts"),
        cancel_requested=False,
    )
    changed = Job.objects.filter(claimable, pk=job_id).update(
        status=Job.Status.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        heartbeat_at=now,
        finished_at=None,
        progress=0.0,
        stage="Starting",
        error="",
        celery_id=celery_id or F("celery_id"),
        worker=socket.gethostname()[:200],
    )
    if not changed:
        return None
    return Job.objects.get(pk=job_id)


def job_heartbeat(*, job_id: int, attempt: int) -> bool:
    """Mark this attempt alive; False when it no longer owns the job."""
    return bool(
        Job.objects.filter(pk=job_id, status=Job.Status.RUNNING, attempts=attempt).update(
            heartbeat_at=timezone.now()
        )
    )


def job_report_progress(
    *, job_id: int, attempt: int, percent: float, stage: str, live: dict[str, Any] | None = None
) -> bool:
    """Store progress for this attempt; False when it no longer owns the job or was asked to
    stop (the caller then checks which)."""
    return bool(
        Job.objects.filter(
            pk=job_id, status=Job.Status.RUNNING, attempts=attempt, cancel_requested=False
        ).update(
            progress=max(0.0, min(100.0, float(percent))),
            stage=stage[:200],
            heartbeat_at=timezone.now(),
            **({"live": live} if live is not None else {}),
        )
    )


def job_lock_for_finish(*, job_id: int, attempt: int) -> bool:
    """Inside a transaction: lock the job row and say whether this attempt still owns it."""
    job = Job.objects.select_for_update().filter(pk=job_id).first()
    return job is not None and job.status == Job.Status.RUNNING and job.attempts == attempt


def job_mark_succeeded(*, job_id: int, attempt: int, result: dict[str, Any]) -> bool:
    """Finish this attempt successfully; False if it no longer owns the job."""
    return bool(
        Job.objects.filter(pk=job_id, status=Job.Status.RUNNING, attempts=attempt).update(
            status=Job.Status.SUCCEEDED,
            progress=100.0,
            stage="Done",
            result=result,
            finished_at=timezone.now(),
        )
    )


def job_mark_failed(*, job_id: int, attempt: int | None, error: str) -> bool:
    """Fail the job with a message for humans; ``attempt=None`` fails it whoever holds it."""
    rows = Job.objects.filter(pk=job_id).exclude(status__in=Job.FINISHED)
    if attempt is not None:
        rows = rows.filter(attempts=attempt)
    return bool(rows.update(status=Job.Status.FAILED, error=error, finished_at=timezone.now()))


def job_mark_cancelled(*, job_id: int, attempt: int | None = None) -> bool:
    """Record that a job stopped because it was cancelled."""
    rows = Job.objects.filter(pk=job_id).exclude(status__in=Job.FINISHED)
    if attempt is not None:
        rows = rows.filter(attempts=attempt)
    return bool(
        rows.update(status=Job.Status.CANCELLED, stage="Cancelled", finished_at=timezone.now())
    )


def job_cancel(*, job: Job, user: AnyUser, request: Any = None) -> Job:
    """Cancel a queued job at once, or ask a running one to stop at its next progress report.
    Idempotent; a finished job is returned unchanged."""
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if locked.is_finished:
            return locked
        if locked.status == Job.Status.QUEUED:
            locked.status = Job.Status.CANCELLED
            locked.stage = "Cancelled"
            locked.finished_at = timezone.now()
            locked.cancel_requested = True
            locked.save(update_fields=["status", "stage", "finished_at", "cancel_requested"])
        else:
            locked.cancel_requested = True
            locked.stage = "Cancelling…"
            locked.save(update_fields=["cancel_requested", "stage"])
        audit_record(
            action=AuditEvent.Action.JOB_CANCELLED,
            actor=user,
            request=request,
            obj=locked,
            patient=locked.patient,
        )
    return locked


@dataclass
class SweepReport:
    requeued: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def jobs_sweep() -> SweepReport:
    """Re-enqueue jobs stranded by a dead worker or a broker outage and fail those out of
    attempts. Every change is a conditional update, so concurrent sweeps are harmless."""
    report = SweepReport()
    now = timezone.now()
    stale = Job.objects.filter(status=Job.Status.RUNNING, heartbeat_at__lt=_stale_cutoff())
    for job in stale.only("pk", "attempts", "max_attempts", "cancel_requested"):
        if job.cancel_requested:
            job_mark_cancelled(job_id=job.pk, attempt=job.attempts)
            continue
        if job.attempts >= job.max_attempts:
            message = (
                f"The worker running this job stopped responding {job.attempts} times, so it "
                "was given up. Start it again; if it keeps failing, tell your MedAI administrator."
            )
            if Job.objects.filter(
                pk=job.pk,
                status=Job.Status.RUNNING,
                attempts=job.attempts,
                heartbeat_at__lt=_stale_cutoff(),
            ).update(status=Job.Status.FAILED, error=message, finished_at=now):
                report.failed.append(job.pk)
            continue
        if Job.objects.filter(
            pk=job.pk,
            status=Job.Status.RUNNING,
            attempts=job.attempts,
            heartbeat_at__lt=_stale_cutoff(),
        ).update(
            status=Job.Status.QUEUED, stage="Waiting for a worker (retrying)", enqueued_at=None
        ):
            report.requeued.append(job.pk)
            job_enqueue(job_id=job.pk)

    # Never sent (broker was down at commit), or sent long ago and never picked up (a message
    # lost with a broker restart). A duplicate message is harmless: the claim runs it once.
    grace = now - timedelta(seconds=5)
    # A job waiting for its not_before is neither lost nor due: its countdown is running.
    lost = (
        Job.objects.filter(status=Job.Status.QUEUED)
        .filter(
            Q(enqueued_at__isnull=True, created_at__lt=grace)
            | Q(enqueued_at__lt=now - settings.MEDAI_JOB_REQUEUE_AFTER)
        )
        .exclude(not_before__gt=now)
    )
    for job_id in lost.values_list("pk", flat=True):
        if job_enqueue(job_id=job_id):
            report.resent.append(job_id)
    return report
