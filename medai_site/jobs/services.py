"""Every write to jobs and workers: create, enqueue (routed), claim, report progress, finish,
cancel, re-queue, sweep; a worker's registration, heartbeat, shutdown and draining."""

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
from medai_site.jobs.models import Job, Worker
from medai_site.jobs.routing import job_route

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
    """Send a queued job's task to the queue routing picks now (stored on the job), to run
    after ``countdown`` seconds or at its ``not_before``, whichever is later; False (job stays
    queued for the sweeper) if the broker cannot be reached or the job is no longer queued.
    Safe to call repeatedly; each call routes again."""
    job = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).first()
    if job is None:
        return False
    kind = get_kind(job.kind)
    queue = job_route(kind=kind).queue
    # Stored before sending, so the page shows where the job waits even while the broker is
    # down (the sweeper re-routes when it re-sends).
    Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(queue=queue)
    if job.not_before is not None:
        countdown = max(countdown, (job.not_before - timezone.now()).total_seconds())
    try:
        # retry=False: when Redis is down the web request must return at once; the job row
        # is the durable record and the sweeper re-sends it. A countdown is held by the
        # worker (an ETA), with any broker, the filesystem one included.
        sent = kind.task.apply_async(
            kwargs={"job_id": job.pk},
            queue=queue,
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


def job_claim(*, job_id: int, celery_id: str = "", worker: str = "") -> Job | None:
    """Take a job for this worker (its Celery node name, else the host name) with one
    conditional update; None when another delivery already runs or finished it (so a
    redelivered or duplicated message does nothing)."""
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
        worker=(worker or socket.gethostname())[:200],
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


class RequeueRefused(Exception):
    """A job that is not failed cannot be re-queued; the message says why, for the page."""


def job_requeue(*, job: Job, user: AnyUser, request: Any = None) -> Job:
    """Put a failed job back in the queue with a fresh set of attempts, routed anew; returns
    the job. Idempotent: a job already queued again (or running) is returned unchanged;
    RequeueRefused for one that succeeded or was cancelled."""
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if locked.status in (Job.Status.QUEUED, Job.Status.RUNNING):
            return locked
        if locked.status != Job.Status.FAILED:
            state = locked.get_status_display().lower()
            raise RequeueRefused(f"Only failed jobs can be re-queued; this one is {state}.")
        previous_error = locked.error
        locked.status = Job.Status.QUEUED
        # A fresh budget: the attempts that failed are history (the audit event keeps them),
        # and the sweeper would otherwise give the job up at its first stale heartbeat.
        locked.max_attempts = locked.attempts + max(1, settings.MEDAI_JOB_MAX_ATTEMPTS)
        locked.progress = 0.0
        locked.stage = "Re-queued"
        locked.error = ""
        locked.finished_at = None
        locked.enqueued_at = None
        locked.not_before = None
        locked.cancel_requested = False
        locked.save(
            update_fields=[
                "status",
                "max_attempts",
                "progress",
                "stage",
                "error",
                "finished_at",
                "enqueued_at",
                "not_before",
                "cancel_requested",
            ]
        )
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=user,
            request=request,
            obj=locked,
            patient=locked.patient,
            detail={
                "job": "requeued",
                "kind": locked.kind,
                "attempts_before": locked.attempts,
                "error_before": previous_error[:200],
            },
        )
        transaction.on_commit(lambda: job_enqueue(job_id=locked.pk))
    return locked


# --- Workers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerFacts:
    """What a worker says about itself at start and in each heartbeat."""

    name: str
    host: str
    pid: int
    queues: list[str]
    pool: str
    concurrency: int
    device_kind: str
    device: dict[str, Any]
    resources: list[str]
    resources_declared: bool
    memory_mb: int


@transaction.atomic
def worker_register(*, facts: WorkerFacts) -> Worker:
    """Record a worker that has just started (replacing any earlier row of its node name:
    a restart clears draining and shutdown); returns the row."""
    now = timezone.now()
    worker, _ = Worker.objects.update_or_create(
        name=facts.name[:200],
        defaults={
            "host": facts.host[:200],
            "pid": facts.pid,
            "queues": facts.queues,
            "pool": facts.pool[:40],
            "concurrency": facts.concurrency,
            "device_kind": facts.device_kind,
            "device": facts.device,
            "resources": facts.resources,
            "resources_declared": facts.resources_declared,
            "memory_mb": facts.memory_mb,
            "started_at": now,
            "last_heartbeat": now,
            "stopped_at": None,
            "draining": False,
            "drained_at": None,
        },
    )
    return worker


def worker_heartbeat(*, name: str, pid: int, queues: list[str]) -> bool:
    """Mark the worker alive with the queues it consumes now; False when its row is gone or
    belongs to a newer process of the same node name (that process then owns it)."""
    return bool(
        Worker.objects.filter(name=name, pid=pid, stopped_at__isnull=True).update(
            last_heartbeat=timezone.now(), queues=queues
        )
    )


def worker_stopped(*, name: str, pid: int) -> bool:
    """Record a clean shutdown of this process of the worker; False if another owns the row."""
    return bool(
        Worker.objects.filter(name=name, pid=pid, stopped_at__isnull=True).update(
            stopped_at=timezone.now(), queues=[]
        )
    )


class DrainFailed(Exception):
    """The worker could not be told to stop consuming; the message says why, for the page."""


def worker_drain(*, worker: Worker, user: AnyUser, request: Any = None) -> Worker:
    """Tell a worker to stop consuming every queue (Celery ``cancel_consumer``; jobs it runs
    now finish), mark it draining so routing skips it, audit it; returns the row. Idempotent;
    DrainFailed when the worker is offline or did not answer (nothing is changed then)."""
    from medai_site.celery import app
    from medai_site.jobs.routing import workers_online

    if worker.draining:
        return worker
    if not workers_online().filter(pk=worker.pk).exists():
        raise DrainFailed(f"{worker.name} is offline; there is nothing to drain.")
    queues = list(worker.queues or [])
    try:
        for queue in queues:
            replies = app.control.cancel_consumer(
                queue, destination=[worker.name], reply=True, timeout=3
            )
            if not replies:
                raise DrainFailed(
                    f"{worker.name} did not answer; it may be busy or unreachable. Try again."
                )
    except DrainFailed:
        raise
    except Exception as exc:  # kombu/redis raise several unrelated connection error types
        logger.warning("drain of %s failed", worker.name, exc_info=True)
        raise DrainFailed(
            f"The broker could not be reached to drain {worker.name} ({type(exc).__name__})."
        ) from None
    with transaction.atomic():
        Worker.objects.filter(pk=worker.pk).update(
            draining=True, drained_at=timezone.now(), queues=[]
        )
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=user,
            request=request,
            obj=worker,
            detail={"worker": "drained", "queues": queues},
        )
    worker.refresh_from_db()
    return worker


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
