"""The fleet: routing by resource, queue position and ETA, the page and its audited actions.

Workers here are rows as a worker writes them (tests/e2e/test_fleet_workers.py starts real
ones); a GPU worker is simulated by its declared resources, as MEDAI_WORKER_RESOURCES=gpu does.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import pytest
from django.utils import timezone

from medai_site.audit.models import AuditEvent
from medai_site.core.compute import device_describe
from medai_site.jobs.charts import throughput_figure
from medai_site.jobs.kinds import get_kind
from medai_site.jobs.models import Job, Worker
from medai_site.jobs.routing import NO_GPU_WORKER, job_route
from medai_site.jobs.selectors import (
    job_estimate,
    job_status_payload,
    kind_timings,
    queue_throughput,
    worker_list,
)
from medai_site.jobs.services import job_enqueue, job_requeue, jobs_sweep
from tests.e2e.processes import celery_broker, free_port
from tests.platform.factories import JobFactory, UserFactory, patient_for

pytestmark = pytest.mark.django_db


def make_worker(
    name: str,
    queues: list[str],
    *,
    gpu: bool = False,
    concurrency: int = 1,
    silent_for: float = 0,
    draining: bool = False,
    memory_mb: int = 0,
) -> Worker:
    beat = timezone.now() - timedelta(seconds=silent_for)
    return Worker.objects.create(
        name=name,
        host=name.split("@")[-1],
        pid=1234,
        queues=queues,
        pool="prefork",
        concurrency=concurrency,
        device_kind="gpu" if gpu else "cpu",
        device={"gpu_name": "declared"} if gpu else {"cpu_model": "x86", "cpu_cores": 2},
        resources=["cpu", "gpu"] if gpu else ["cpu"],
        resources_declared=gpu,
        memory_mb=memory_mb,
        started_at=beat - timedelta(minutes=5),
        last_heartbeat=beat,
        draining=draining,
    )


@pytest.fixture
def sent(monkeypatch) -> list[dict[str, Any]]:
    """The apply_async options of every job task sent (instead of the broker)."""
    from celery.app.task import Task

    calls: list[dict[str, Any]] = []

    class Sent:
        id = "sent-id"

    def apply_async(self, args=None, kwargs=None, **options):
        calls.append({"task": self.name, **options, "kwargs": kwargs})
        return Sent()

    monkeypatch.setattr(Task, "apply_async", apply_async)
    return calls


# --- Routing ------------------------------------------------------------------------------------


def test_gpu_preferring_job_goes_to_ml_without_a_gpu_worker_and_to_gpu_with_one(users, sent):
    kind = get_kind("test.gpu_preferred")
    make_worker("ml@cpu-1", ["default", "ml"])
    assert job_route(kind=kind).queue == "ml"
    job = JobFactory(kind=kind.name, owner=users.model_admin)
    assert job_enqueue(job_id=job.pk)
    job.refresh_from_db()
    assert job.queue == "ml" and sent[-1]["queue"] == "ml"

    # A GPU worker (simulated by its declared resources) comes online on the gpu queue.
    make_worker("gpu@gpu-1", ["gpu"], gpu=True, memory_mb=16384)
    second = JobFactory(kind=kind.name, owner=users.model_admin)
    assert job_enqueue(job_id=second.pk)
    second.refresh_from_db()
    assert second.queue == "gpu" and sent[-1]["queue"] == "gpu"
    assert sent[-1]["kwargs"] == {"job_id": second.pk}


@pytest.mark.parametrize(
    "gpu_worker",
    [
        {"silent_for": 600},  # heartbeat stale: offline
        {"draining": True},
        {"memory_mb": 1024},  # less than the kind's 2048 MiB
        {"gpu": False},  # consumes gpu but has no GPU
    ],
)
def test_gpu_preferring_job_passes_over_an_unusable_gpu_worker(gpu_worker):
    make_worker("gpu@gpu-1", ["gpu"], **{"gpu": True, **gpu_worker})
    assert job_route(kind=get_kind("test.gpu_preferred")).queue == "ml"


def test_cpu_kinds_keep_their_queue_whatever_the_fleet():
    make_worker("gpu@gpu-1", ["gpu"], gpu=True)
    assert job_route(kind=get_kind("test.slow")).queue == "default"
    assert job_route(kind=get_kind("test.ml_echo")).queue == "ml"


def test_gpu_required_job_without_a_gpu_worker_waits_on_gpu_and_its_page_says_so(
    users, sent, client_for
):
    make_worker("ml@cpu-1", ["default", "ml"])
    job = JobFactory(kind="test.gpu_required", owner=users.clinician_a)
    assert job_route(kind=get_kind(job.kind)).warning == NO_GPU_WORKER
    job_enqueue(job_id=job.pk)
    job.refresh_from_db()
    assert job.queue == "gpu" and sent[-1]["queue"] == "gpu"

    client = client_for(users.clinician_a)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Waiting for a GPU worker: none is online." in page
    status = client.get(f"/jobs/{job.pk}/status/").json()
    assert status["estimate"]["waiting_reason"] == NO_GPU_WORKER
    assert status["estimate"]["position"] == 1 and status["estimate"]["queue"] == "gpu"

    make_worker("gpu@gpu-1", ["gpu"], gpu=True)
    status = client.get(f"/jobs/{job.pk}/status/").json()
    assert status["estimate"]["waiting_reason"] == ""
    assert "GPU" not in status["estimate"]["text"]


def test_sweeper_re_routes_a_job_it_re_sends(users, sent, settings):
    """A GPU-preferring job sent to gpu whose GPU worker died goes to ml when re-sent."""
    settings.MEDAI_JOB_REQUEUE_AFTER = timedelta(seconds=60)
    gpu = make_worker("gpu@gpu-1", ["gpu"], gpu=True)
    job = JobFactory(kind="test.gpu_preferred", owner=users.model_admin)
    job_enqueue(job_id=job.pk)
    job.refresh_from_db()
    assert job.queue == "gpu"
    Worker.objects.filter(pk=gpu.pk).update(last_heartbeat=timezone.now() - timedelta(hours=1))
    Job.objects.filter(pk=job.pk).update(enqueued_at=timezone.now() - timedelta(minutes=5))
    assert jobs_sweep().resent == [job.pk]
    job.refresh_from_db()
    assert job.queue == "ml" and sent[-1]["queue"] == "ml"


# --- Queue position and ETA ---------------------------------------------------------------------


def history(kind: str, run_seconds: list[float], owner) -> None:
    """Finished runs of ``kind`` that took ``run_seconds`` each (after a 4 s wait)."""
    now = timezone.now()
    for seconds in run_seconds:
        job = JobFactory(kind=kind, owner=owner, queue="ml")
        started = now - timedelta(minutes=30)
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.SUCCEEDED,
            created_at=started - timedelta(seconds=4),
            started_at=started,
            finished_at=started + timedelta(seconds=seconds),
            worker="ml@cpu-1",
        )


def queued(kind: str, owner, *, minutes_ago: float, queue: str = "ml") -> Job:
    job = JobFactory(kind=kind, owner=owner, queue=queue)
    Job.objects.filter(pk=job.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago), enqueued_at=timezone.now()
    )
    job.refresh_from_db()
    return job


def test_queue_position_and_eta_from_the_kinds_history(users):
    owner = users.model_admin
    first = queued("test.ml_echo", owner, minutes_ago=3)
    second = queued("test.gpu_preferred", owner, minutes_ago=2)
    third = queued("test.ml_echo", owner, minutes_ago=1)
    queued("test.slow", owner, minutes_ago=2, queue="default")  # another queue: not ahead

    # No history of the kinds yet: position, but no ETA.
    make_worker("ml@cpu-1", ["ml"], concurrency=1)
    estimate = job_estimate(third)
    assert (estimate["position"], estimate["ahead"], estimate["eta_seconds"]) == (3, 2, None)
    assert "no history yet" in estimate["text"]

    history("test.ml_echo", [10, 20, 90], owner)  # median 20 s
    history("test.gpu_preferred", [40], owner)  # median 40 s
    estimate = job_estimate(third)
    # Ahead: an ml_echo (20 s) and a gpu_preferred (40 s) on one slot, then its own 20 s.
    assert estimate["wait_seconds"] == 60.0 and estimate["eta_seconds"] == 80.0
    assert estimate["text"] == "3rd in the ml queue; about 1 min to finish"
    assert job_estimate(first)["position"] == 1 and job_estimate(first)["eta_seconds"] == 20.0
    assert job_estimate(second)["position"] == 2

    # A second consumer halves the wait; a running job adds what it has left.
    make_worker("ml@cpu-2", ["default", "ml"], concurrency=1)
    assert job_estimate(third)["wait_seconds"] == 30.0
    Job.objects.filter(pk=first.pk).update(
        status=Job.Status.RUNNING,
        started_at=timezone.now() - timedelta(seconds=30),
        progress=50.0,
    )
    estimate = job_estimate(third)
    # Ahead now: gpu_preferred queued (40 s) + ml_echo running at 50% after 30 s (30 s left).
    assert estimate["position"] == 2 and estimate["wait_seconds"] == pytest.approx(35.0, abs=0.5)

    first.refresh_from_db()
    running = job_estimate(first)
    assert running["position"] is None
    assert running["eta_seconds"] == pytest.approx(30.0, abs=0.5)
    assert running["text"] == "About 30 s left"
    # Before 5% the kind's median decides: 20 s median, 15 s run -> 5 s left.
    Job.objects.filter(pk=first.pk).update(
        progress=1.0, started_at=timezone.now() - timedelta(seconds=15)
    )
    first.refresh_from_db()
    assert job_estimate(first)["eta_seconds"] == pytest.approx(5.0, abs=0.5)

    payload = job_status_payload(third)
    assert payload["estimate"]["position"] == 2
    Job.objects.filter(pk=third.pk).update(status=Job.Status.CANCELLED)
    third.refresh_from_db()
    assert job_status_payload(third)["estimate"] == {}


def test_a_queue_without_consumers_says_so(users):
    job = queued("test.ml_echo", users.model_admin, minutes_ago=1)
    make_worker("ml@cpu-1", ["ml"], draining=True)
    estimate = job_estimate(job)
    assert estimate["eta_seconds"] is None
    assert "No worker consumes the ml queue now" in estimate["waiting_reason"]


def test_a_job_never_sent_says_so_and_where_it_will_go(users):
    make_worker("ml@cpu-1", ["ml"])
    job = JobFactory(kind="test.gpu_preferred", owner=users.model_admin)  # queue not chosen yet
    assert job_estimate(job)["queue"] == "ml" and job_estimate(job)["waiting_reason"] == ""
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    job.refresh_from_db()
    assert "Not sent to the broker yet" in job_estimate(job)["waiting_reason"]


def test_kind_timings_and_throughput(users):
    history("test.ml_echo", [10, 20, 90], users.model_admin)
    [row] = [t for t in kind_timings() if t.kind == "test.ml_echo"]
    assert (row.jobs, row.median_wait, row.median_run) == (3, 4.0, 20.0)
    per_queue = queue_throughput()
    assert sum(n for _, n in per_queue["ml"]) == 3 and sum(n for _, n in per_queue["gpu"]) == 0
    figure = throughput_figure(per_queue)
    assert [trace["name"] for trace in figure["data"]] == ["default", "ml", "gpu"]
    assert sum(figure["data"][1]["y"]) == 3
    assert figure["data"][1]["x"][-1].endswith("+00:00")
    assert per_queue["ml"][-1][0].tzinfo == UTC


def test_worker_list_online_offline_and_counts(users, settings):
    settings.MEDAI_WORKER_OFFLINE_AFTER = 10
    live = make_worker("ml@cpu-1", ["ml"])
    make_worker("ml@cpu-2", ["ml"], silent_for=30)
    history("test.ml_echo", [10, 20], users.model_admin)
    JobFactory(
        kind="test.ml_echo", owner=users.model_admin, status=Job.Status.RUNNING, worker=live.name
    )
    rows = {row.worker.name: row for row in worker_list()}
    assert rows["ml@cpu-1"].online and not rows["ml@cpu-2"].online
    assert rows["ml@cpu-1"].running == 1 and rows["ml@cpu-1"].finished_hour == 2
    assert rows["ml@cpu-2"].since == Worker.objects.get(name="ml@cpu-2").last_heartbeat


def test_device_describe_reports_the_cpu_or_a_declared_gpu():
    cpu = device_describe(declared="")
    # This machine has no NVIDIA driver: CPU, measured.
    assert cpu.kind == "cpu" and cpu.resources == ["cpu"]
    assert cpu.detail["cpu_cores"] >= 1 and cpu.detail["memory_mb"] > 0
    declared = device_describe(declared="gpu")
    assert declared.kind == "gpu" and declared.declared and "gpu" in declared.resources
    assert "not detected" in declared.detail["gpu_name"]


# --- The page and its actions -------------------------------------------------------------------


def test_fleet_page_for_model_admins_and_superusers_only_without_patient_identifiers(
    users, client_for
):
    patient = patient_for(users.clinician_a, mrn="MRN-SECRET-77")
    job = JobFactory(
        kind="patients.import",
        title="Import for MRN-SECRET-77",
        owner=users.clinician_a,
        patient=patient,
        queue="default",
    )
    research = JobFactory(
        kind="test.ml_echo", title="Cohort sweep", owner=users.model_admin, queue="ml"
    )
    make_worker("ml@cpu-1", ["default", "ml"])
    make_worker("gpu@gpu-1", ["gpu"], gpu=True, silent_for=3600)

    page = client_for(users.model_admin).get("/jobs/fleet/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-worker="ml@cpu-1" data-online="1"' in html
    assert 'data-worker="gpu@gpu-1" data-online="0"' in html
    assert "MRN-SECRET-77" not in html and "Import for" not in html
    assert f"#{job.pk} patient import" in html
    assert f"#{research.pk} ml queue test job: Cohort sweep" in html
    assert 'id="fleet-throughput"' in html  # the chart's json_script
    assert "<script>" not in html.replace('<script type="application/json"', "")

    superuser = UserFactory(username="it", is_staff=True, is_superuser=True)
    assert client_for(superuser).get("/jobs/fleet/").status_code == 200
    for user in (users.clinician_a, users.researcher):
        assert client_for(user).get("/jobs/fleet/").status_code == 403


def test_fleet_page_renders_with_the_broker_down(users, client_for):
    make_worker("ml@cpu-1", ["ml"])
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):
        page = client_for(users.model_admin).get("/jobs/fleet/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('<td class="num" data-field="depth">unknown</td>') == 3
    assert "The broker could not be reached" in html


def test_fleet_page_shows_broker_depths(users, client_for):
    from medai_site.jobs.selectors import queue_depths

    depths = queue_depths()
    assert set(depths) == {"default", "ml", "gpu"}
    assert all(isinstance(d, int) for d in depths.values())


def test_requeue_a_failed_job_is_audited_idempotent_and_refused_for_others(
    users, client_for, django_capture_on_commit_callbacks, sent
):
    job = JobFactory(
        kind="test.gpu_preferred",
        owner=users.model_admin,
        status=Job.Status.FAILED,
        attempts=3,
        max_attempts=3,
        error="boom",
    )
    client = client_for(users.model_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/jobs/fleet/jobs/{job.pk}/requeue/")
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED and job.error == "" and job.max_attempts == 6
    assert job.queue == "ml" and sent[-1]["queue"] == "ml"  # routed again at the re-send
    event = AuditEvent.objects.get(action=AuditEvent.Action.RECORD_CHANGED, object_id=str(job.pk))
    assert event.detail["job"] == "requeued" and event.actor == users.model_admin

    again = job_requeue(job=job, user=users.model_admin)  # already queued: unchanged
    assert again.status == Job.Status.QUEUED
    assert AuditEvent.objects.filter(detail__job="requeued").count() == 1

    done = JobFactory(owner=users.model_admin, status=Job.Status.SUCCEEDED)
    response = client.post(f"/jobs/fleet/jobs/{done.pk}/requeue/", follow=True)
    assert "Only failed jobs can be re-queued; this one is succeeded." in response.content.decode()
    done.refresh_from_db()
    assert done.status == Job.Status.SUCCEEDED


def test_cancel_a_queued_job_from_the_fleet(users, client_for):
    patient = patient_for(users.clinician_a)
    job = JobFactory(kind="patients.import", owner=users.clinician_a, patient=patient)
    client = client_for(users.model_admin)
    assert client.post(f"/jobs/fleet/jobs/{job.pk}/cancel/").status_code == 302
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    event = AuditEvent.objects.get(action=AuditEvent.Action.JOB_CANCELLED)
    assert event.actor == users.model_admin and event.patient_id == patient.pk
    running = JobFactory(owner=users.model_admin, status=Job.Status.RUNNING)
    response = client.post(f"/jobs/fleet/jobs/{running.pk}/cancel/", follow=True)
    assert "only queued jobs are cancelled here" in response.content.decode()
    assert client.post("/jobs/fleet/jobs/999999/cancel/").status_code == 404


def test_draining_an_offline_worker_is_refused(users, client_for):
    worker = make_worker("ml@cpu-1", ["ml"], silent_for=3600)
    response = client_for(users.model_admin).post(
        f"/jobs/fleet/workers/{worker.pk}/drain/", follow=True
    )
    assert "ml@cpu-1 is offline; there is nothing to drain." in response.content.decode()
    worker.refresh_from_db()
    assert not worker.draining
    assert not AuditEvent.objects.filter(detail__worker="drained").exists()


def test_device_describe_reads_what_torch_reports_where_a_driver_exists(monkeypatch):
    """Where nvidia-smi exists, the child interpreter's CUDA report decides (the real probe
    runs on GPU machines; here its answer is given, as a CUDA build would print it)."""
    import subprocess

    from medai_site.core import compute

    monkeypatch.setattr(compute.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    answers = iter(
        [
            '{"cuda": true, "name": "NVIDIA H100 80GB HBM3", "memory_mb": 81559, "count": 1}',
            '{"cuda": false}',  # a CPU build of torch beside a driver
        ]
    )

    def run(argv, **kwargs):
        assert argv[1] == "-c" and "torch.cuda" in argv[2]
        return subprocess.CompletedProcess(argv, 0, stdout=next(answers) + "\n", stderr="")

    monkeypatch.setattr(compute.subprocess, "run", run)
    gpu = device_describe()
    assert (gpu.kind, gpu.resources, gpu.declared) == ("gpu", ["cpu", "gpu"], False)
    assert gpu.detail["gpu_name"] == "NVIDIA H100 80GB HBM3" and gpu.memory_mb == 81559
    assert device_describe().kind == "cpu"
