"""Where PyTorch work runs: CUDA when the worker has a GPU, CPU otherwise."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


def worker_concurrency() -> int:
    """The number of processes this worker runs (Celery passes -c through the environment)."""
    return max(1, int(os.environ.get("MEDAI_WORKER_CONCURRENCY", "1")))


def torch_threads() -> int:
    """Threads per worker process: cores divided among the worker's processes, at least one."""
    if settings.MEDAI_TORCH_THREADS:
        return settings.MEDAI_TORCH_THREADS
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // worker_concurrency())


def configure_worker_process() -> None:
    """Size torch's thread pool for this process; called once per forked worker process.

    Torch is imported lazily by the tasks that need it (a ``default`` worker never pays for
    it), and reads OMP_NUM_THREADS when it is imported; an already imported torch is resized.
    """
    threads = torch_threads()
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    logger.info("worker process: torch threads=%s", threads)


def torch_device() -> torch.device:
    """The device a model should run on: the first CUDA device if present, else the CPU."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")
