"""Faults with real processes on PostgreSQL and a private Redis (never the machine's own):
a worker killed with SIGKILL mid-job, and Redis down while a job is requested."""

from __future__ import annotations

import os
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test import Client

from medai_site.audit.models import AuditEvent
from medai_site.jobs.models import Job
from medai_site.jobs.services import job_create, jobs_sweep
from medai_site.patients.models import Patient
from tests.e2e.processes import (
    base_env,
    celery_broker,
    free_port,
    start_redis,
    start_worker,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

STALE_AFTER = 3


@pytest.fixture
def private_broker(tmp_path, settings):
    """A Redis of our own, the in-process Celery app pointed at it, and worker settings
    that treat a job silent for 3 s as stranded."""
    settings.MEDAI_JOB_STALE_AFTER = timedelta(seconds=STALE_AFTER)
    port = free_port()
    redis = start_redis(port, tmp_path / "redis.log")
    url = f"redis://127.0.0.1:{port}/0"
    db = connection.settings_dict
    env = base_env(
        DJANGO_SETTINGS_MODULE="medai_site.settings.test",
        DATABASE_URL=f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        CELERY_BROKER_URL=url,
        MEDAI_JOB_HEARTBEAT="0.5",
        MEDAI_JOB_STALE_AFTER=str(STALE_AFTER),
        MEDAI_BROKER_CONNECT_TIMEOUT="1",
        # Shared media storage, as several machines would mount it.
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
    )
    workers = []

    def worker(name: str):
        proc = start_worker(env, tmp_path / f"{name}.log", queues="default,ml", name=name)
        workers.append(proc)
        return proc

    with celery_broker(url):
        yield SimpleNamespace(redis=redis, port=port, url=url, env=env, worker=worker, tmp=tmp_path)
    for proc in workers:
        proc.stop()
    redis.stop()


def job_state(job: Job) -> Job:
    job.refresh_from_db()
    return job


def test_killed_worker_job_completes_exactly_once_after_restart(private_broker, users):
    job = job_create(
        kind="test.slow",
        owner=users.clinician_a,
        title="slow",
        params={"steps": 30, "step_seconds": 0.2},
    )
    first = private_broker.worker("first")
    try:
        wait_for(
            lambda: job_state(job).status == Job.Status.RUNNING and job.progress >= 20,
            timeout=60,
            message="the job to be running",
        )
    except TimeoutError:
        raise AssertionError(first.tail()) from None
    first.kill()  # SIGKILL the whole worker: main process and its pool child
    first.popen.wait(10)
    progress_at_kill = job_state(job).progress
    assert job.status == Job.Status.RUNNING and progress_at_kill < 100

    second = private_broker.worker("second")

    def swept_and_done() -> bool:
        jobs_sweep()  # what beat runs every 30 s
        return job_state(job).is_finished

    try:
        wait_for(swept_and_done, timeout=90, interval=0.5, message="the job to finish")
    except TimeoutError:
        raise AssertionError(second.tail()) from None
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.attempts == 2 and job.progress == 100
    assert AuditEvent.objects.filter(detail__slow_job_done=job.pk).count() == 1

    # A late duplicate delivery (e.g. Redis handing back the unacknowledged first message)
    # finds the job finished and does nothing.
    from tests.support.jobs import slow_job

    slow_job.apply_async(kwargs={"job_id": job.pk}, queue="default")
    wait_for(
        lambda: "not claimable" in second.tail(200),
        timeout=30,
        message="the duplicate to be skipped",
    )
    assert AuditEvent.objects.filter(detail__slow_job_done=job.pk).count() == 1
    assert job_state(job).attempts == 2


def test_request_succeeds_while_redis_is_down_and_sweeper_finishes_job(private_broker, users):
    private_broker.redis.stop()
    client = Client()
    client.force_login(users.clinician_a, backend="django.contrib.auth.backends.ModelBackend")
    csv = b"mrn,given_name,family_name,birth_date,sex\nRD1,Rita,Down,1980-02-02,F\n"
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(
        "/patients/import/",
        {"source": "csv", "file": SimpleUploadedFile("r.csv", csv, content_type="text/csv")},
    )
    assert response.status_code == 302, response.content[:500]
    job = Job.objects.get()
    assert job.status == Job.Status.QUEUED and job.enqueued_at is None

    # Nothing is lost while the broker is down; the sweeper cannot send it yet either.
    Job.objects.filter(pk=job.pk).update(created_at=job.created_at - timedelta(minutes=1))
    assert jobs_sweep().resent == []
    assert job_state(job).status == Job.Status.QUEUED

    private_broker.redis = start_redis(private_broker.port, private_broker.tmp / "redis-2.log")
    worker = private_broker.worker("after-outage")
    assert jobs_sweep().resent == [job.pk]
    try:
        wait_for(lambda: job_state(job).is_finished, timeout=60, message="the import")
    except TimeoutError:
        raise AssertionError(worker.tail()) from None
    assert job.status == Job.Status.SUCCEEDED and job.attempts == 1, job.error
    assert Patient.objects.filter(mrn="RD1").count() == 1


def test_ml_queue_reaches_only_ml_workers(private_broker, users):
    """PyTorch work goes to the ml queue: an ml-only worker runs it and leaves default work."""
    worker = start_worker(
        private_broker.env, private_broker.tmp / "ml.log", queues="ml", name="mlonly"
    )
    try:
        ml_job = job_create(kind="test.ml_echo", owner=users.clinician_a, title="ml")
        default_job = job_create(
            kind="test.slow",
            owner=users.clinician_a,
            title="default",
            params={"steps": 1, "step_seconds": 0},
        )
        try:
            wait_for(lambda: job_state(ml_job).is_finished, timeout=60, message="the ml job")
        except TimeoutError:
            raise AssertionError(worker.tail()) from None
        assert ml_job.status == Job.Status.SUCCEEDED
        # One process per GPU/CPU: torch gets all the cores of this single-process worker.
        cores = len(os.sched_getaffinity(0))
        assert ml_job.result["omp_threads"] == str(cores)
        assert job_state(default_job).status == Job.Status.QUEUED
    finally:
        worker.stop()
