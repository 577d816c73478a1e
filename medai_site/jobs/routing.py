"""Routing by resource: the queue a job goes to, from its kind's need and the live workers.

Read at every enqueue (first send, the sweeper's re-send, a re-queue), so a job follows the
fleet as it is now: a GPU-preferring job goes to ``gpu`` while a GPU worker consumes it and
back to its CPU queue when none does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from medai_site.jobs.kinds import JobKind, Need
from medai_site.jobs.models import Worker

GPU_QUEUE = "gpu"
NO_GPU_WORKER = "Waiting for a GPU worker: none is online."


@dataclass(frozen=True)
class Route:
    queue: str
    # Why the job may wait longer than its queue's usual wait ("" when nothing is wrong).
    warning: str = ""


def workers_online() -> QuerySet[Worker]:
    """Workers with a fresh heartbeat that have not shut down (draining ones included)."""
    cutoff = timezone.now() - timedelta(seconds=settings.MEDAI_WORKER_OFFLINE_AFTER)
    return Worker.objects.filter(stopped_at__isnull=True, last_heartbeat__gte=cutoff)


def consumers_of(queue: str) -> list[Worker]:
    """The online, non-draining workers that consume ``queue`` now."""
    # JSON containment differs between SQLite and PostgreSQL; the fleet is a handful of rows.
    return [w for w in workers_online().filter(draining=False) if queue in (w.queues or [])]


def gpu_workers_for(*, memory_mb: int = 0) -> list[Worker]:
    """Online, non-draining workers that consume ``gpu``, have a GPU and at least
    ``memory_mb`` MiB of device memory (unknown memory counts as enough)."""
    return [
        w
        for w in consumers_of(GPU_QUEUE)
        if w.has_gpu and (not memory_mb or not w.memory_mb or w.memory_mb >= memory_mb)
    ]


def job_route(*, kind: JobKind) -> Route:
    """The queue for a job of ``kind`` now; reads the worker registry, writes nothing."""
    if kind.need == Need.CPU:
        return Route(kind.queue)
    has_gpu = bool(gpu_workers_for(memory_mb=kind.memory_mb))
    if kind.need == Need.GPU_PREFERRED:
        # Correct on a CPU, only slower: never wait for a GPU that is not there.
        return Route(GPU_QUEUE if has_gpu else kind.queue)
    # GPU required: the message waits on the gpu queue until a GPU worker consumes it; the
    # job's page says why instead of showing a silent "queued".
    return Route(GPU_QUEUE, "" if has_gpu else NO_GPU_WORKER)
