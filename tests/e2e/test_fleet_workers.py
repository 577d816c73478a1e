"""The fleet with two real Celery workers on PostgreSQL and a private Redis: both report
themselves, a GPU-preferring job is routed by what is online (the GPU worker simulated by its
declared resources), draining really stops a worker consuming, and a SIGKILLed worker is shown
offline once its heartbeat is stale."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from medai_site.jobs.models import Job, Worker
from medai_site.jobs.selectors import queue_depths
from medai_site.jobs.services import job_create
from tests.e2e.processes import (
    base_env,
    celery_broker,
    free_port,
    start_redis,
    start_worker,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OFFLINE_AFTER = 2.0


@pytest.fixture
def fleet(tmp_path, settings):
    """A private Redis, and a starter of workers that beat every 0.3 s."""
    settings.MEDAI_WORKER_OFFLINE_AFTER = OFFLINE_AFTER
    port = free_port()
    redis = start_redis(port, tmp_path / "redis.log")
    url = f"redis://127.0.0.1:{port}/0"
    db = connection.settings_dict
    env = base_env(
        DJANGO_SETTINGS_MODULE="medai_site.settings.test",
        DATABASE_URL=f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        CELERY_BROKER_URL=url,
        MEDAI_WORKER_HEARTBEAT_SECONDS="0.3",
        MEDAI_WORKER_OFFLINE_AFTER=str(OFFLINE_AFTER),
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
    )
    workers = []

    def worker(name: str, queues: str, **extra: str):
        proc = start_worker({**env, **extra}, tmp_path / f"{name}.log", queues=queues, name=name)
        workers.append(proc)
        return proc

    with celery_broker(url):
        yield worker
    for proc in workers:
        proc.stop()
    redis.stop()


def online(name_prefix: str) -> Worker | None:
    from medai_site.jobs.routing import workers_online

    return workers_online().filter(name__startswith=name_prefix).first()


def test_two_real_workers_routing_drain_and_a_killed_one_offline(fleet, users, client_for):
    cpu = fleet("cpu", "default,ml")
    gpu = fleet("gpu", "gpu", MEDAI_WORKER_RESOURCES="gpu")
    try:
        cpu_row = wait_for(lambda: online("cpu-"), timeout=60, message="the cpu worker's row")
        gpu_row = wait_for(lambda: online("gpu-"), timeout=60, message="the gpu worker's row")
    except TimeoutError:
        raise AssertionError(cpu.tail() + "\n" + gpu.tail()) from None
    # What each worker said about itself.
    assert cpu_row.queues == ["default", "ml"] and cpu_row.pool == "prefork"
    assert cpu_row.concurrency == 1 and cpu_row.device_kind == "cpu"
    assert cpu_row.device["cpu_cores"] >= 1 and cpu_row.resources == ["cpu"]
    assert gpu_row.queues == ["gpu"] and gpu_row.resources == ["cpu", "gpu"]
    assert gpu_row.resources_declared and gpu_row.device_kind == "gpu"
    first_beat = gpu_row.last_heartbeat
    wait_for(
        lambda: Worker.objects.get(pk=gpu_row.pk).last_heartbeat > first_beat,
        timeout=10,
        message="a heartbeat",
    )

    client = client_for(users.model_admin)
    html = client.get("/jobs/fleet/").content.decode()
    assert f'data-worker="{cpu_row.name}" data-online="1"' in html
    assert f'data-worker="{gpu_row.name}" data-online="1"' in html

    # GPU online: a GPU-preferring job goes to gpu and runs on the GPU worker.
    on_gpu = job_create(kind="test.gpu_preferred", owner=users.model_admin, title="prefers gpu")
    wait_for(lambda: Job.objects.get(pk=on_gpu.pk).is_finished, timeout=60, message="gpu job")
    on_gpu.refresh_from_db()
    assert on_gpu.status == Job.Status.SUCCEEDED, on_gpu.error
    assert (on_gpu.queue, on_gpu.worker) == ("gpu", gpu_row.name)

    # Drain the GPU worker from the page: it stops consuming (its own heartbeat says so),
    # routing skips it, and the next GPU-preferring job runs on the CPU worker's ml queue.
    assert client.post(f"/jobs/fleet/workers/{gpu_row.pk}/drain/").status_code == 302
    gpu_row.refresh_from_db()
    assert gpu_row.draining
    time.sleep(1.0)
    assert Worker.objects.get(pk=gpu_row.pk).queues == []
    on_cpu = job_create(kind="test.gpu_preferred", owner=users.model_admin, title="prefers gpu")
    wait_for(lambda: Job.objects.get(pk=on_cpu.pk).is_finished, timeout=60, message="cpu job")
    on_cpu.refresh_from_db()
    assert (on_cpu.status, on_cpu.queue, on_cpu.worker) == ("succeeded", "ml", cpu_row.name)

    # A GPU-only job now waits on gpu: the broker counts it, its page says why.
    waiting = job_create(kind="test.gpu_required", owner=users.model_admin, title="gpu only")
    wait_for(lambda: queue_depths()["gpu"] == 1, timeout=10, message="the gpu queue depth")
    html = client.get("/jobs/fleet/").content.decode()
    assert '<tr data-queue="gpu">' in html and "draining" in html
    detail = client.get(f"/jobs/{waiting.pk}/").content.decode()
    assert "Waiting for a GPU worker: none is online." in detail

    # SIGKILL the CPU worker: no shutdown is recorded, so only the stale heartbeat tells.
    cpu.kill()
    cpu.popen.wait(10)
    wait_for(lambda: online("cpu-") is None, timeout=OFFLINE_AFTER + 5, message="offline")
    html = client.get("/jobs/fleet/").content.decode()
    assert f'data-worker="{cpu_row.name}" data-online="0"' in html
    assert Worker.objects.get(pk=cpu_row.pk).stopped_at is None  # killed, not shut down

    # A clean stop of the GPU worker is recorded at once.
    gpu.stop()
    assert Worker.objects.get(pk=gpu_row.pk).stopped_at is not None
