"""Worker compute settings: torch threads divided among processes, CUDA only when present."""

from __future__ import annotations

import os

import torch

from medai_site.core import compute


def test_threads_are_cores_divided_by_concurrency(monkeypatch, settings):
    settings.MEDAI_TORCH_THREADS = None
    cores = len(os.sched_getaffinity(0))
    monkeypatch.setenv("MEDAI_WORKER_CONCURRENCY", "1")
    assert compute.torch_threads() == cores
    monkeypatch.setenv("MEDAI_WORKER_CONCURRENCY", str(cores * 4))
    assert compute.torch_threads() == 1  # never zero
    settings.MEDAI_TORCH_THREADS = 3
    assert compute.torch_threads() == 3


def test_configure_worker_process_sizes_an_imported_torch(monkeypatch, settings):
    settings.MEDAI_TORCH_THREADS = 1
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "")
    try:
        compute.configure_worker_process()
        assert torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
    finally:
        torch.set_num_threads(before)


def test_device_is_cuda_only_when_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert compute.torch_device().type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert compute.torch_device().type == "cuda"
