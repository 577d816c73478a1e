"""Shared by the benchmarks: waiting for a Job the product path queued."""

from __future__ import annotations

import time
from typing import Any


def wait_for_job(job: Any, timeout: float = 600, poll: float = 0.01) -> None:
    """Block until ``job`` finishes; RuntimeError unless it succeeded, TimeoutError if slow."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            if job.status != "succeeded":
                raise RuntimeError(f"job {job.pk} {job.status}: {job.error}")
            return
        time.sleep(poll)
    raise TimeoutError(f"job {job.pk} did not finish")
