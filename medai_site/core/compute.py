"""Where PyTorch work runs: CUDA when the worker has a GPU, CPU otherwise."""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


# Run in a child interpreter: initialising CUDA in a Celery worker's parent process would break
# CUDA in the pool processes it forks later, and a worker without a GPU never pays for torch.
_CUDA_PROBE = """
import json, torch
out = {"cuda": torch.cuda.is_available()}
if out["cuda"]:
    props = torch.cuda.get_device_properties(0)
    out.update(name=props.name, memory_mb=props.total_memory // 2**20,
               count=torch.cuda.device_count())
print(json.dumps(out))
"""


@dataclass(frozen=True)
class DeviceFacts:
    """What a worker runs PyTorch on, as measured on its own machine."""

    kind: str  # "cpu" or "gpu"
    detail: dict[str, Any]
    resources: list[str]
    declared: bool
    memory_mb: int  # the GPU's memory for a GPU worker, else the machine's RAM


def _cpu_detail() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        ram_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError, AttributeError):
        ram_mb = 0
    return {"cpu_model": model, "cpu_cores": cores or 1, "memory_mb": int(ram_mb)}


def _cuda_probe(timeout: float) -> dict[str, Any]:
    """torch's view of CUDA, from a child interpreter; {"cuda": False} when there is no NVIDIA
    driver (no nvidia-smi), torch is a CPU build, or the probe fails."""
    if shutil.which("nvidia-smi") is None:
        return {"cuda": False}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CUDA_PROBE],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    except (subprocess.SubprocessError, OSError, ValueError, IndexError):
        logger.warning("CUDA probe failed; reporting this worker as CPU", exc_info=True)
        return {"cuda": False, "probe_failed": True}


def device_describe(*, declared: str = "", probe_timeout: float = 120) -> DeviceFacts:
    """This machine's compute as a worker reports it: the GPU torch can use, else the CPU;
    ``declared`` ("gpu", comma-separated) adds resources ops vouch for without detection."""
    wanted = {part.strip().lower() for part in declared.split(",") if part.strip()}
    cpu = _cpu_detail()
    cuda = _cuda_probe(probe_timeout)
    if cuda.get("cuda"):
        detail = {
            "gpu_name": cuda.get("name", "CUDA device"),
            "gpu_memory_mb": int(cuda.get("memory_mb", 0)),
            "gpu_count": int(cuda.get("count", 1)),
            **cpu,
        }
        return DeviceFacts("gpu", detail, ["cpu", "gpu"], False, detail["gpu_memory_mb"])
    if "gpu" in wanted:
        # Declared, not seen: said so on the fleet page, so nobody mistakes it for a measurement.
        detail = {"gpu_name": "declared by MEDAI_WORKER_RESOURCES (not detected)", **cpu}
        return DeviceFacts("gpu", detail, ["cpu", "gpu"], True, 0)
    return DeviceFacts("cpu", cpu, ["cpu"], False, cpu["memory_mb"])
