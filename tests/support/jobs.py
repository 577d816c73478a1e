"""A test-only job kind: slow, reports progress every step, and leaves one countable side
effect (an audit event) committed together with its success."""

from __future__ import annotations

import time
from typing import Any

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.jobs.exceptions import JobError
from medai_site.jobs.kinds import Need
from medai_site.jobs.models import Job
from medai_site.jobs.runtime import Progress, job_task


@job_task(kind="test.slow", label="slow test job", queue="default")
def slow_job(job: Job, progress: Progress) -> dict[str, Any]:
    steps = int(job.params.get("steps", 10))
    for step in range(steps):
        time.sleep(float(job.params.get("step_seconds", 0.1)))
        progress.update(100.0 * (step + 1) / steps, f"Step {step + 1} of {steps}", force=True)
    if job.params.get("fail"):
        raise JobError("The slow job was told to fail.")
    if job.params.get("crash"):
        raise RuntimeError("boom")
    with progress.finishing() as outcome:
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=job.owner,
            obj=job,
            detail={"slow_job_done": job.pk},
        )
        outcome.result = {"summary": f"Did {steps} steps."}
    return outcome.result


@job_task(kind="test.ml_echo", label="ml queue test job", queue="ml")
def ml_echo(job: Job, progress: Progress) -> dict[str, Any]:
    import os

    progress.update(50, "thinking", force=True)
    return {"summary": "ml queue ok", "omp_threads": os.environ.get("OMP_NUM_THREADS", "")}


@job_task(
    kind="test.gpu_preferred",
    label="GPU-preferring test job",
    queue="ml",
    need=Need.GPU_PREFERRED,
    memory_mb=2048,
)
def gpu_preferred(job: Job, progress: Progress) -> dict[str, Any]:
    import time

    progress.update(50, "on a device", force=True)
    time.sleep(float(job.params.get("seconds", 0)))
    return {"summary": "ran", "queue": job.queue}


@job_task(kind="test.gpu_required", label="GPU-only test job", queue="ml", need=Need.GPU_REQUIRED)
def gpu_required(job: Job, progress: Progress) -> dict[str, Any]:
    return {"summary": "ran on the gpu queue", "queue": job.queue}
