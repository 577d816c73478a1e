"""The house task decorator: a Celery task per job kind that claims, runs and finishes a Job.

A job function has the signature ``fn(job, progress) -> dict | None``. It does its long work
outside any database transaction, reports progress, and writes its results inside
``with progress.finishing() as outcome:`` so the domain rows and the job's success commit
together (a worker dying before that commit leaves nothing half-written; one dying after it
leaves a finished job that no redelivery runs again).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, models, transaction

from medai_site.celery import app
from medai_site.jobs import services
from medai_site.jobs.exceptions import JobCancelled, JobError, JobLost
from medai_site.jobs.kinds import QUEUES, JobKind, Need, get_kind, register_kind
from medai_site.jobs.models import Job

logger = logging.getLogger(__name__)

JobFunction = Callable[[Job, "Progress"], "dict[str, Any] | None"]
RowT = TypeVar("RowT", bound=models.Model)

# Progress is written at most this often unless the stage text changes, so a per-batch
# callback does not turn into a write per batch.
_PROGRESS_MIN_INTERVAL = 0.5


@dataclass
class Outcome:
    result: dict[str, Any] = field(default_factory=dict)


class ProgressSink(Protocol):
    """What work that reports progress needs of a reporter: a job's :class:`Progress`, or a
    shipped model's build log (``medai_site.registry.shipped.BuildLog``)."""

    def update(
        self,
        percent: float,
        stage: str | None = None,
        *,
        force: bool = False,
        live: dict[str, Any] | None = None,
    ) -> None: ...


class Progress:
    """Handed to a job function: report progress, check cancellation, commit results."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.attempt = job.attempts
        self.finished = False
        self._last_write = 0.0
        self._last_stage = ""

    def update(
        self,
        percent: float,
        stage: str | None = None,
        *,
        force: bool = False,
        live: dict[str, Any] | None = None,
    ) -> None:
        """Record progress (and optional live data for charts); raises JobCancelled/JobLost
        when the job should stop now."""
        stage = self._last_stage if stage is None else stage
        now = time.monotonic()
        quiet = stage == self._last_stage and live is None
        if not force and quiet and now - self._last_write < _PROGRESS_MIN_INTERVAL:
            return
        self._last_write, self._last_stage = now, stage
        if not services.job_report_progress(
            job_id=self.job.pk, attempt=self.attempt, percent=percent, stage=stage, live=live
        ):
            self._raise_stop()

    def _raise_stop(self) -> None:
        current = Job.objects.filter(pk=self.job.pk).values("cancel_requested").first()
        if current and current["cancel_requested"]:
            raise JobCancelled()
        raise JobLost()

    @contextmanager
    def finishing(self) -> Iterator[Outcome]:
        """Commit the caller's writes and the job's success in one transaction."""
        outcome = Outcome()
        with transaction.atomic():
            if not services.job_lock_for_finish(job_id=self.job.pk, attempt=self.attempt):
                raise JobLost()
            yield outcome
            services.job_mark_succeeded(
                job_id=self.job.pk, attempt=self.attempt, result=outcome.result
            )
        self.finished = True


class _Heartbeat(threading.Thread):
    """Keeps ``heartbeat_at`` fresh while a long step (an epoch) reports nothing."""

    def __init__(self, job_id: int, attempt: int) -> None:
        super().__init__(daemon=True, name=f"job-{job_id}-heartbeat")
        self.job_id, self.attempt = job_id, attempt
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.MEDAI_JOB_HEARTBEAT):
                if not services.job_heartbeat(job_id=self.job_id, attempt=self.attempt):
                    return
        except Exception:
            logger.exception("heartbeat for job %s failed", self.job_id)
        finally:
            connection.close()


def job_row(
    rows: models.Manager[RowT] | models.QuerySet[RowT], *, job: Job, param: str, missing: str
) -> RowT:
    """The row whose primary key is ``job.params[param]``; raises ``JobError(missing)`` when it
    no longer exists (deleted after the job was queued), which fails the job with that message."""
    row = rows.filter(pk=job.params.get(param)).first()
    if row is None:
        raise JobError(missing)
    return row


def job_execute(*, job_id: int, fn: JobFunction, celery_id: str = "", worker: str = "") -> str:
    """Run one delivery of a job: claim it, run ``fn``, record the outcome. Returns the final
    status, or "skipped" when the claim failed (another delivery has or had it)."""
    # Celery's Django fixup closes stale connections around each task, so none is done here.
    job = services.job_claim(job_id=job_id, celery_id=celery_id, worker=worker)
    if job is None:
        logger.info("job %s: not claimable (already running or finished); skipping", job_id)
        return "skipped"
    progress = Progress(job)
    heartbeat = _Heartbeat(job.pk, job.attempts)
    heartbeat.start()
    try:
        result = fn(job, progress)
        if not progress.finished:
            with progress.finishing() as outcome:
                outcome.result = result or {}
        return Job.Status.SUCCEEDED
    except JobCancelled:
        services.job_mark_cancelled(job_id=job.pk, attempt=job.attempts)
        return Job.Status.CANCELLED
    except JobLost:
        logger.warning("job %s attempt %s lost ownership; stopping", job.pk, job.attempts)
        return "lost"
    except JobError as exc:
        services.job_mark_failed(job_id=job.pk, attempt=job.attempts, error=str(exc))
        return Job.Status.FAILED
    except SoftTimeLimitExceeded:
        minutes = round(_task_time_limit(job.kind) / 60)
        services.job_mark_failed(
            job_id=job.pk,
            attempt=job.attempts,
            error=f"The job ran past its time limit of {minutes} minutes and was stopped.",
        )
        return Job.Status.FAILED
    except Exception as exc:
        logger.exception("job %s (%s) failed", job.pk, job.kind)
        services.job_mark_failed(
            job_id=job.pk,
            attempt=job.attempts,
            error=(
                f"An internal error stopped this job ({type(exc).__name__}) at stage "
                f"'{progress._last_stage or 'start'}'. The details are in the worker log; "
                "tell your MedAI administrator if it happens again."
            ),
        )
        return Job.Status.FAILED
    finally:
        heartbeat.stopped.set()
        heartbeat.join(timeout=5)


def job_run_now(*, job_id: int, worker: str = "inline") -> str:
    """Run a queued job in this process, as a worker would (claimed first, so the worker that
    later receives its message skips it): for work that must be done before the site serves,
    e.g. seed_demo validating the shipped models. Returns the final status (or "skipped")."""
    kind = Job.objects.values_list("kind", flat=True).get(pk=job_id)
    return job_execute(job_id=job_id, fn=get_kind(kind).task.job_function, worker=worker)


def _task_time_limit(kind: str) -> int:
    return get_kind(kind).task.time_limit or settings.CELERY_DEFAULT_TIME_LIMIT


def job_task(
    *,
    kind: str,
    label: str,
    queue: str = "default",
    time_limit: int | None = None,
    patient_data: bool = False,
    need: Need = Need.CPU,
    memory_mb: int = 0,
) -> Callable[[JobFunction], Task]:
    """Decorate ``fn(job, progress)`` into the Celery task that runs jobs of ``kind``.

    Late acknowledgement plus reject-on-worker-lost means a killed worker's message goes back
    to the broker; the soft limit (0.9 x hard) lets the job record a clear error before the
    hard limit kills the process. ``queue`` is where the job runs without a GPU; ``need``
    says whether a GPU is preferred or required (routing then picks ``gpu`` when it can).
    """
    if queue not in QUEUES:
        raise ValueError(f"Unknown queue {queue!r}")
    heavy = queue != "default" or need != Need.CPU
    hard = time_limit or (
        settings.CELERY_ML_TIME_LIMIT if heavy else settings.CELERY_DEFAULT_TIME_LIMIT
    )

    def decorate(fn: JobFunction) -> Task:
        @app.task(
            name=f"jobs.run.{kind}",
            bind=True,
            acks_late=True,
            reject_on_worker_lost=True,
            time_limit=hard,
            soft_time_limit=int(hard * 0.9),
            ignore_result=True,
        )
        def run(self: Task, *, job_id: int) -> str:
            return job_execute(
                job_id=job_id,
                fn=fn,
                celery_id=self.request.id or "",
                worker=self.request.hostname or "",
            )

        run.__doc__ = f"Run one {label} job by primary key (idempotent: claims before working)."
        run.job_function = fn
        register_kind(
            JobKind(
                name=kind,
                queue=queue,
                task=run,
                label=label,
                patient_data=patient_data,
                need=need,
                memory_mb=memory_mb,
            )
        )
        return run

    return decorate
