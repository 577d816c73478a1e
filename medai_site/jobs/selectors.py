"""Every read of jobs, scoped to what the user may see."""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone

from medai_site.core.roles import is_model_admin_or_it
from medai_site.jobs.kinds import QUEUES, get_kind
from medai_site.jobs.models import Job, Worker
from medai_site.jobs.routing import (
    GPU_QUEUE,
    NO_GPU_WORKER,
    consumers_of,
    job_route,
    workers_online,
)
from medai_site.patients.models import CareTeamMembership

if TYPE_CHECKING:
    from medai_site.core.roles import AnyUser

logger = logging.getLogger(__name__)


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
        # Where it waits and when it should be done ({} once finished).
        "estimate": job_estimate(job),
    }


# --- Fleet: workers, queues, queue position and ETA ---------------------------------------------

#: Runs of a kind that its ETA is estimated from (the most recent successful ones).
ETA_HISTORY_RUNS = 50
#: Below this progress a running job's remaining time comes from its kind's median run time,
#: not from extrapolating a few percent.
EXTRAPOLATE_FROM_PERCENT = 5.0


def fleet_visible_to(user: AnyUser) -> bool:
    """Model admins and hospital IT (active superusers) see the fleet; nobody else."""
    return is_model_admin_or_it(user)


def duration_text(seconds: float | None) -> str:
    """ "45 s", "4 min", "2 h 5 min"; "" for None."""
    if seconds is None:
        return ""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    minutes = round(s / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def kind_median_run(kind: str, *, cache: dict[str, float | None] | None = None) -> float | None:
    """Median seconds from start to finish of the kind's last successful runs; None with no
    history yet."""
    if cache is not None and kind in cache:
        return cache[kind]
    rows = (
        Job.objects.filter(
            kind=kind,
            status=Job.Status.SUCCEEDED,
            started_at__isnull=False,
            finished_at__isnull=False,
        )
        .order_by("-finished_at")
        .values_list("started_at", "finished_at")[:ETA_HISTORY_RUNS]
    )
    value = _median(
        [max(0.0, (end - start).total_seconds()) for start, end in rows if start and end]
    )
    if cache is not None:
        cache[kind] = value
    return value


def _remaining(job: Job, median: float | None, now: datetime) -> float | None:
    """Seconds a running job has left: extrapolated from its progress once that says
    something, else its kind's median less the time it has run; None when neither is known."""
    elapsed = max(0.0, (now - job.started_at).total_seconds()) if job.started_at else 0.0
    if job.progress >= EXTRAPOLATE_FROM_PERCENT and elapsed > 0:
        return elapsed * (100.0 - job.progress) / job.progress
    if median is not None:
        return max(0.0, median - elapsed)
    return None


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def job_estimate(job: Job) -> dict[str, Any]:
    """Queue position and ETA of an unfinished job (empty for a finished one): position among
    the due queued jobs of its queue, wait = the median runs of the jobs ahead plus what the
    running ones have left, over the live consumers' slots; ``text`` for people."""
    if job.is_finished:
        return {}
    now = timezone.now()
    medians: dict[str, float | None] = {}
    own = kind_median_run(job.kind, cache=medians)
    if job.status == Job.Status.RUNNING:
        remaining = _remaining(job, own, now)
        text = (
            f"About {duration_text(remaining)} left"
            if remaining is not None
            else "No history yet for an estimate"
        )
        return {
            "queue": job.queue,
            "position": None,
            "ahead": 0,
            "wait_seconds": 0.0,
            "eta_seconds": None if remaining is None else round(remaining, 1),
            "waiting_reason": "",
            "text": text,
        }
    # Not sent yet (created this instant, or the broker was down): where routing will send it.
    try:
        queue = job.queue or job_route(kind=get_kind(job.kind)).queue
    except KeyError:  # a kind no app registers any more: nothing will run it
        queue = job.queue
    unsent = job.enqueued_at is None and job.created_at < now - timedelta(seconds=10)
    due = Q(not_before__isnull=True) | Q(not_before__lte=now)
    ahead_rows = list(
        Job.objects.filter(due, queue=queue, status=Job.Status.QUEUED, cancel_requested=False)
        .filter(Q(created_at__lt=job.created_at) | Q(created_at=job.created_at, pk__lt=job.pk))
        .values_list("kind", flat=True)
    )
    running = list(Job.objects.filter(queue=queue, status=Job.Status.RUNNING))
    slots = sum(w.concurrency for w in consumers_of(queue))
    position = len(ahead_rows) + 1
    where = f"{_ordinal(position)} in the {queue} queue"
    reason = ""
    if unsent:
        reason = "Not sent to the broker yet (it may be unreachable); the sweeper retries."
    elif not slots:
        reason = (
            NO_GPU_WORKER
            if queue == GPU_QUEUE
            else f"No worker consumes the {queue} queue now; it waits for one to start."
        )
    work: list[float | None] = [kind_median_run(k, cache=medians) for k in ahead_rows]
    work += [_remaining(r, kind_median_run(r.kind, cache=medians), now) for r in running]
    wait = eta = None
    if slots and own is not None and all(w is not None for w in work):
        wait = sum(w for w in work if w is not None) / slots
        eta = wait + own
    if reason:
        text = f"{where}. {reason}"
    elif eta is None:
        text = f"{where}; no history yet for an estimate"
    else:
        text = f"{where}; about {duration_text(eta)} to finish"
    return {
        "queue": queue,
        "position": position,
        "ahead": len(ahead_rows),
        "wait_seconds": None if wait is None else round(wait, 1),
        "eta_seconds": None if eta is None else round(eta, 1),
        "waiting_reason": reason,
        "text": text,
    }


@dataclass(frozen=True)
class WorkerRow:
    worker: Worker
    online: bool
    since: datetime  # online since (start) or offline since (shutdown / last heartbeat)
    heartbeat_age: float  # seconds since its last heartbeat
    running: int
    finished_hour: int
    failed_hour: int
    finished_day: int
    failed_day: int


def worker_list() -> list[WorkerRow]:
    """Every worker that has reported itself, online ones first, with its job counts."""
    now = timezone.now()
    online_ids = set(workers_online().values_list("pk", flat=True))
    hour, day = now - timedelta(hours=1), now - timedelta(days=1)
    finished = Q(status__in=[Job.Status.SUCCEEDED, Job.Status.CANCELLED])
    failed = Q(status=Job.Status.FAILED)
    counts = {
        row["worker"]: row
        for row in Job.objects.exclude(worker="")
        .values("worker")
        .annotate(
            running=Count("pk", filter=Q(status=Job.Status.RUNNING)),
            finished_hour=Count("pk", filter=finished & Q(finished_at__gte=hour)),
            failed_hour=Count("pk", filter=failed & Q(finished_at__gte=hour)),
            finished_day=Count("pk", filter=finished & Q(finished_at__gte=day)),
            failed_day=Count("pk", filter=failed & Q(finished_at__gte=day)),
        )
    }
    rows = []
    for worker in Worker.objects.all():
        online = worker.pk in online_ids
        c = counts.get(worker.name, {})
        rows.append(
            WorkerRow(
                worker=worker,
                online=online,
                since=worker.started_at if online else (worker.stopped_at or worker.last_heartbeat),
                heartbeat_age=max(0.0, (now - worker.last_heartbeat).total_seconds()),
                running=c.get("running", 0) if online else 0,
                finished_hour=c.get("finished_hour", 0),
                failed_hour=c.get("failed_hour", 0),
                finished_day=c.get("finished_day", 0),
                failed_day=c.get("failed_day", 0),
            )
        )
    rows.sort(key=lambda r: (not r.online, r.worker.name))
    return rows


def queue_depths() -> dict[str, int | None]:
    """Messages waiting in each queue, asked of the broker (Redis or the filesystem one);
    None for every queue when the broker cannot be reached."""
    from medai_site.celery import app

    depths: dict[str, int | None] = {}
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=settings.CELERY_BROKER_CONNECTION_TIMEOUT)
            channel = conn.default_channel
            for queue in QUEUES:
                try:
                    depths[queue] = int(
                        channel.queue_declare(queue=queue, passive=True).message_count
                    )
                except Exception:  # a queue never declared yet on this broker: nothing waits
                    logger.debug("queue %s not declared on the broker", queue, exc_info=True)
                    depths[queue] = 0
    except Exception:  # kombu/redis raise several unrelated connection error types
        logger.warning("broker unreachable for queue depths", exc_info=True)
        return dict.fromkeys(QUEUES)
    return depths


@dataclass(frozen=True)
class QueueRow:
    name: str
    depth: int | None  # from the broker; None: unknown (broker unreachable)
    waiting_jobs: int  # queued jobs the database routed here
    oldest_waiting: Job | None
    consumers: list[Worker]
    slots: int


def queue_list() -> list[QueueRow]:
    """Each queue: broker depth, queued jobs and the oldest, its live consumers."""
    depths = queue_depths()
    rows = []
    for name in QUEUES:
        waiting = Job.objects.filter(queue=name, status=Job.Status.QUEUED)
        consumers = consumers_of(name)
        rows.append(
            QueueRow(
                name=name,
                depth=depths.get(name),
                waiting_jobs=waiting.count(),
                oldest_waiting=waiting.order_by("created_at", "pk").first(),
                consumers=consumers,
                slots=sum(w.concurrency for w in consumers),
            )
        )
    return rows


@dataclass(frozen=True)
class KindTiming:
    kind: str
    label: str
    need: str
    jobs: int
    median_wait: float | None
    median_run: float | None


def kind_timings(*, since: timedelta = timedelta(days=1)) -> list[KindTiming]:
    """Median wait (queued or due -> started) and run (started -> finished, successes) per job
    kind, over the jobs started in the last ``since``."""
    cutoff = timezone.now() - since
    waits: dict[str, list[float]] = {}
    runs: dict[str, list[float]] = {}
    for kind, status, created, not_before, started, finished in Job.objects.filter(
        started_at__gte=cutoff
    ).values_list("kind", "status", "created_at", "not_before", "started_at", "finished_at"):
        if started is None:  # filtered out above; says so to the type checker
            continue
        ready = max(created, not_before) if not_before else created
        waits.setdefault(kind, []).append(max(0.0, (started - ready).total_seconds()))
        if status == Job.Status.SUCCEEDED and finished:
            runs.setdefault(kind, []).append(max(0.0, (finished - started).total_seconds()))
    rows = []
    for kind in sorted(waits):
        try:
            registered = get_kind(kind)
            label, need = registered.label, str(registered.need)
        except KeyError:
            label, need = kind, ""
        rows.append(
            KindTiming(
                kind=kind,
                label=label,
                need=need,
                jobs=len(waits[kind]),
                median_wait=_median(waits[kind]),
                median_run=_median(runs.get(kind, [])),
            )
        )
    return rows


def queue_throughput(
    *, since: timedelta = timedelta(days=1)
) -> dict[str, list[tuple[datetime, int]]]:
    """Jobs finished per hour in each queue over the last ``since`` (hours without any: 0)."""
    now = timezone.now()
    start = (now - since).replace(minute=0, second=0, microsecond=0)
    hours = []
    hour = start
    while hour <= now:
        hours.append(hour)
        hour += timedelta(hours=1)
    counts: dict[tuple[str, datetime], int] = {}
    for row in (
        Job.objects.filter(finished_at__gte=start, status__in=Job.FINISHED)
        .exclude(queue="")
        .annotate(hour=TruncHour("finished_at", tzinfo=UTC))
        .values("queue", "hour")
        .annotate(n=Count("pk"))
    ):
        counts[(row["queue"], row["hour"])] = row["n"]
    return {
        queue: [(h, counts.get((queue, h.astimezone(UTC)), 0)) for h in hours] for queue in QUEUES
    }


@dataclass(frozen=True)
class FleetJob:
    job: Job
    # What staff may read: the kind's label, never a title about a patient.
    label: str
    patient_data: bool


def fleet_jobs(*, limit: int = 50) -> list[FleetJob]:
    """Queued, running and recently failed jobs for the fleet's actions: a job about a patient
    or of a patient-data kind is shown by kind only (no title, no owner)."""
    day = timezone.now() - timedelta(days=1)
    jobs = Job.objects.filter(
        Q(status__in=[Job.Status.QUEUED, Job.Status.RUNNING])
        | Q(status=Job.Status.FAILED, finished_at__gte=day)
    ).order_by("status", "created_at", "pk")[:limit]
    rows = []
    for job in jobs:
        try:
            kind = get_kind(job.kind)
            label, sensitive = kind.label, kind.patient_data
        except KeyError:
            label, sensitive = job.kind, True
        sensitive = sensitive or job.patient_id is not None
        rows.append(
            FleetJob(
                job=job,
                label=label if sensitive else f"{label}: {job.title}",
                patient_data=sensitive,
            )
        )
    return rows
