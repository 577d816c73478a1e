"""The registry of job kinds: which Celery task runs each kind, on which queue, needing what."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from celery import Task

#: Every queue of the app (medai_site.celery declares the same): light work, CPU PyTorch and
#: scikit-learn work, and work for workers with a GPU.
QUEUES = ("default", "ml", "gpu")


class Need(StrEnum):
    """What a kind needs to run: routing (medai_site.jobs.routing) reads it."""

    CPU = "cpu"  # runs on its kind's queue, wherever
    GPU_PREFERRED = "gpu_preferred"  # faster on a GPU, correct on a CPU: gpu if one is online
    GPU_REQUIRED = "gpu_required"  # only on a GPU: waits on the gpu queue for a GPU worker


@dataclass(frozen=True)
class JobKind:
    name: str
    queue: str
    task: Task
    label: str
    # The job reads or writes patient data (even when no single patient is on the row, as in
    # an import): staff without clinical access never see such jobs in the admin.
    patient_data: bool = False
    need: Need = Need.CPU
    # Device memory it needs, in MiB (0: unknown / small): a GPU worker with less is passed
    # over when routing a GPU-preferring job.
    memory_mb: int = 0


_KINDS: dict[str, JobKind] = {}


def register_kind(kind: JobKind) -> None:
    """Register a job kind; a second registration of the same name is a programming error."""
    existing = _KINDS.get(kind.name)
    if existing is not None and existing.task.name != kind.task.name:
        raise ValueError(f"Job kind {kind.name!r} is already registered.")
    _KINDS[kind.name] = kind


def get_kind(name: str) -> JobKind:
    """The registered kind called ``name``; KeyError if no app registered it."""
    return _KINDS[name]


def kinds_without_patient_data() -> list[str]:
    """Names of the registered kinds that never touch patient data (unknown kinds excluded)."""
    return sorted(name for name, kind in _KINDS.items() if not kind.patient_data)


def route_task(
    name: str, args: object, kwargs: object, options: object, task: object = None, **extra: object
) -> dict[str, str] | None:
    """Celery router: a job kind's task goes to its kind's queue; anything else to default."""
    for kind in _KINDS.values():
        if kind.task.name == name:
            return {"queue": kind.queue}
    return None
