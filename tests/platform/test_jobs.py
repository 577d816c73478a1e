"""Jobs: idempotent claims, progress, atomic finish, cancellation, and the sweeper."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from medai_site.audit.models import AuditEvent
from medai_site.jobs.models import Job
from medai_site.jobs.runtime import job_execute
from medai_site.jobs.selectors import job_list, job_status_payload
from medai_site.jobs.services import (
    job_cancel,
    job_claim,
    job_create,
    jobs_sweep,
)
from tests.platform.factories import CareTeamMembershipFactory, JobFactory, patient_for
from tests.support.jobs import slow_job

pytestmark = pytest.mark.django_db


def make_job(user, **params) -> Job:
    return JobFactory(title="slow", owner=user, params={"steps": 2, "step_seconds": 0, **params})


def side_effects(job: Job) -> int:
    return AuditEvent.objects.filter(detail__slow_job_done=job.pk).count()


def slow_fn():
    """The job function behind the test.slow task, as the Celery task calls it."""
    return slow_job.job_function


def test_job_create_enqueues_only_after_commit(
    users, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(
        "medai_site.jobs.services.job_enqueue", lambda *, job_id: sent.append(job_id) or True
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = job_create(kind="test.slow", owner=users.clinician_a, title="t")
        assert sent == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert sent == [job.pk]
    assert job.status == Job.Status.QUEUED
    assert AuditEvent.objects.filter(action="job_started", object_id=str(job.pk)).exists()


def test_job_create_rejects_unknown_kind(users):
    with pytest.raises(KeyError):
        job_create(kind="no.such.kind", owner=users.clinician_a, title="t")
    assert not Job.objects.exclude(kind="registry.validate").exists()


def test_claim_is_idempotent(users):
    job = make_job(users.clinician_a)
    first = job_claim(job_id=job.pk)
    assert first is not None and first.status == Job.Status.RUNNING and first.attempts == 1
    assert job_claim(job_id=job.pk) is None  # a redelivered message does nothing
    job.refresh_from_db()
    assert job.attempts == 1


def test_execute_runs_once_and_commits_result_with_success(users):
    job = make_job(users.clinician_a)
    assert job_execute(job_id=job.pk, fn=slow_fn()) == Job.Status.SUCCEEDED
    assert job_execute(job_id=job.pk, fn=slow_fn()) == "skipped"
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.progress == 100
    assert job.result["summary"] == "Did 2 steps."
    assert side_effects(job) == 1


def test_expected_failure_shows_its_message(users):
    job = make_job(users.clinician_a, fail=True)
    assert job_execute(job_id=job.pk, fn=slow_fn()) == Job.Status.FAILED
    job.refresh_from_db()
    assert job.error == "The slow job was told to fail."
    assert side_effects(job) == 0


def test_unexpected_failure_gives_a_human_message_without_traceback(users):
    job = make_job(users.clinician_a, crash=True)
    job_execute(job_id=job.pk, fn=slow_fn())
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "RuntimeError" in job.error and "Traceback" not in job.error
    assert "administrator" in job.error


def test_cancel_queued_job_is_immediate_and_task_then_skips(users):
    job = make_job(users.clinician_a)
    job_cancel(job=job, user=users.clinician_a)
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert job_execute(job_id=job.pk, fn=slow_fn()) == "skipped"
    assert side_effects(job) == 0


def test_cancel_running_job_stops_at_next_progress(users):
    job = make_job(users.clinician_a, steps=3)

    def fn(job, progress):
        progress.update(10, "one", force=True)
        job_cancel(job=job, user=users.clinician_a)  # as if clicked in the browser meanwhile
        progress.update(20, "two", force=True)
        raise AssertionError("progress.update should have stopped the job")

    assert job_execute(job_id=job.pk, fn=fn) == Job.Status.CANCELLED
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED and job.finished_at is not None


def test_lost_attempt_cannot_finish(users):
    """A worker whose job was re-assigned (stale heartbeat) must not write results."""
    job = make_job(users.clinician_a)

    def fn(job, progress):
        # Meanwhile the sweeper re-queued it and another worker claimed it (attempt 2).
        Job.objects.filter(pk=job.pk).update(status=Job.Status.QUEUED)
        job_claim(job_id=job.pk)
        with progress.finishing():
            raise AssertionError("must not get here")

    assert job_execute(job_id=job.pk, fn=fn) == "lost"
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING and job.attempts == 2


def test_sweeper_requeues_stale_running_job_then_fails_after_max_attempts(users, monkeypatch):
    resent = []
    monkeypatch.setattr(
        "medai_site.jobs.services.job_enqueue", lambda *, job_id: resent.append(job_id) or True
    )
    job = make_job(users.clinician_a)
    job_claim(job_id=job.pk)
    long_ago = timezone.now() - timedelta(minutes=10)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=long_ago)
    report = jobs_sweep()
    assert report.requeued == [job.pk] and resent == [job.pk]
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED

    # Two more dead attempts use up max_attempts (3): the sweeper gives up with a reason.
    for _ in range(2):
        job_claim(job_id=job.pk)
        Job.objects.filter(pk=job.pk).update(heartbeat_at=long_ago)
        jobs_sweep()
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "stopped responding 3 times" in job.error


def test_sweeper_resends_jobs_never_sent(users, monkeypatch):
    resent = []
    monkeypatch.setattr(
        "medai_site.jobs.services.job_enqueue", lambda *, job_id: resent.append(job_id) or True
    )
    fresh = make_job(users.clinician_a)
    stranded = make_job(users.clinician_a)
    Job.objects.filter(pk=stranded.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    jobs_sweep()
    assert resent == [stranded.pk]  # the fresh one is still inside its on_commit grace period
    assert fresh.pk not in resent


def test_a_delayed_job_is_sent_with_its_countdown_and_the_sweeper_waits(users, monkeypatch):
    from medai_site.jobs.kinds import get_kind
    from medai_site.jobs.services import job_enqueue

    sent: list[dict] = []

    class Sent:
        id = "celery-id"

    def apply_async(**kwargs):
        sent.append(kwargs)
        return Sent()

    monkeypatch.setattr(get_kind("test.slow").task, "apply_async", apply_async)
    job = job_create(kind="test.slow", owner=users.clinician_a, title="t", delay=30)
    assert job_enqueue(job_id=job.pk)
    assert 25 < sent[0]["countdown"] <= 30
    # Never sent (the broker was down) and created long ago, but not yet due: left alone.
    Job.objects.filter(pk=job.pk).update(
        enqueued_at=None, created_at=timezone.now() - timedelta(minutes=1)
    )
    assert jobs_sweep().resent == []
    Job.objects.filter(pk=job.pk).update(not_before=timezone.now() - timedelta(seconds=1))
    assert jobs_sweep().resent == [job.pk]
    assert "countdown" not in sent[-1]


def test_job_visibility(users):
    job = make_job(users.clinician_a)
    assert list(job_list(user=users.clinician_a)) == [job]
    assert list(job_list(user=users.clinician_b)) == []


def test_status_payload(users):
    job = make_job(users.clinician_a)
    job_execute(job_id=job.pk, fn=slow_fn())
    job.refresh_from_db()
    payload = job_status_payload(job)
    assert payload["finished"] is True and payload["progress"] == 100
    assert payload["result_summary"] == "Did 2 steps."
    assert payload["elapsed_seconds"] is not None
    # The live data a job reported (training curves) reach the page's poll.
    job.live = {"figure": {"data": [], "layout": {}}}
    job.save(update_fields=["live"])
    assert job_status_payload(job)["live"] == {"figure": {"data": [], "layout": {}}}


def test_status_view_and_cancel_view(users, client_for):
    job = make_job(users.clinician_a)
    client = client_for(users.clinician_a)
    response = client.get(f"/jobs/{job.pk}/status/")
    assert response.status_code == 200 and response.json()["status"] == "queued"
    response = client.post(f"/jobs/{job.pk}/cancel/", HTTP_ACCEPT="application/json")
    assert response.json()["status"] == "cancelled"
    other = client_for(users.clinician_b)
    assert other.get(f"/jobs/{job.pk}/status/").status_code == 404


def test_removed_clinician_loses_the_patients_jobs_at_once(users, client_for):
    from medai_site.patients.models import CareTeamMembership

    patient = patient_for(users.clinician_a)
    CareTeamMembershipFactory(patient=patient, user=users.clinician_b)
    # Clinician B started the job while on the care team.
    job = JobFactory(title="Classify 1 scan", owner=users.clinician_b, patient=patient)
    client = client_for(users.clinician_b)
    assert client.get(f"/jobs/{job.pk}/").status_code == 200
    CareTeamMembership.objects.filter(patient=patient, user=users.clinician_b).delete()

    assert client.get(f"/jobs/{job.pk}/").status_code == 404
    assert client.get(f"/jobs/{job.pk}/status/").status_code == 404
    assert client.post(f"/jobs/{job.pk}/cancel/").status_code == 404
    assert f"/jobs/{job.pk}/" not in client.get("/jobs/").content.decode()
    assert list(job_list(user=users.clinician_b)) == []
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED and not job.cancel_requested
    # The remaining care team still sees it; the clinician's own non-patient jobs stay theirs.
    assert list(job_list(user=users.clinician_a)) == [job]
    own = make_job(users.clinician_b)
    assert list(job_list(user=users.clinician_b)) == [own]


def test_job_row_loads_the_named_row_or_fails_the_job_with_the_message(users):
    from medai_site.jobs.exceptions import JobError
    from medai_site.jobs.runtime import job_row

    other = make_job(users.clinician_a)
    job = make_job(users.clinician_a, other_id=other.pk)
    assert job_row(Job.objects, job=job, param="other_id", missing="gone") == other
    other.delete()
    with pytest.raises(JobError, match="^The other job no longer exists.$"):
        job_row(
            Job.objects.all(), job=job, param="other_id", missing="The other job no longer exists."
        )
