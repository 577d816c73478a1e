"""Long-lived processes freeze start-up's objects out of the garbage collector's sight:
gunicorn workers through the configuration the Procfile names, Celery worker processes."""

from __future__ import annotations

import gc
import importlib
import shlex

import pytest
from celery.signals import worker_process_init

from medai_site.core.startup import gc_freeze_after_startup
from tests.e2e.processes import ROOT


@pytest.fixture(autouse=True)
def _unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_freezing_moves_live_objects_out_of_collections():
    kept = [object() for _ in range(10)]
    assert gc.get_freeze_count() == 0
    frozen = gc_freeze_after_startup()
    assert frozen > len(kept)
    # Equal but for what another thread of the test process (pytest-xdist's) did in between.
    assert abs(gc.get_freeze_count() - frozen) <= 100
    assert all(len(gc.get_objects(generation)) < frozen for generation in range(3))


def test_procfile_gunicorn_config_freezes_after_the_worker_loaded_the_site():
    web = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")
    )
    args = shlex.split(web.split(":", 1)[1])
    config = args[args.index("-c") + 1]
    assert config.startswith("python:")
    module = importlib.import_module(config.removeprefix("python:"))
    module.post_worker_init(worker=None)
    assert gc.get_freeze_count() > 0


def test_celery_worker_processes_freeze_on_start():
    import medai_site.celery as celery_app

    receivers = [ref() for _, ref in worker_process_init.receivers]
    assert celery_app._freeze_startup_objects in receivers
    celery_app._freeze_startup_objects()
    assert gc.get_freeze_count() > 0
