"""Model governance: validation on the locked held-out set with a paired comparison, four-eyes
approval (refused to the trainer and to non-admins, overrides recorded), activation only after
approval except the bootstrap of a task, roll-back for new work, audit events, the timeline
page and the release record on the model facts card.

A test family ("governance.demo") with a validation hook over a fixed 200-item set stands in
for the real families here; tests/platform/test_governance_families.py runs the real hooks."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.exceptions import ValidationError

from medai_site.audit.models import AuditEvent
from medai_site.core.roles import Role
from medai_site.jobs.models import Job
from medai_site.registry import catalogue
from medai_site.registry.catalogue import HeldOutOutputs, HeldOutSet
from medai_site.registry.loader import clear_model_cache, load_active_model
from medai_site.registry.models import (
    ModelActivation,
    ModelApproval,
    ModelHeldOut,
    ModelValidation,
    ModelVersion,
)
from medai_site.registry.selectors import model_version_card, model_version_timeline
from medai_site.registry.services import (
    model_validation_start,
    model_version_activate,
    model_version_approve,
    model_version_register,
    model_version_rollback,
)
from tests.platform.factories import UserFactory

pytestmark = pytest.mark.django_db

TASK = "governance.demo"
N_ITEMS = 200
LABELS = np.random.default_rng(0).integers(0, 2, N_ITEMS)
NOISE = np.random.default_rng(1).normal(size=N_ITEMS)


def _scores(skill: float) -> list[float]:
    """Scores that separate the fixed labels with ``skill`` (0 = chance)."""
    return (skill * LABELS + NOISE).tolist()


def demo_validate(version, source):
    # The artifact's bytes name the skill (b"0.0" .. b"3.0"); ``source`` may pick another set.
    with version.artifact.open("rb") as handle:
        skill = float(handle.read().decode())
    ids = tuple(f"item{i}" for i in range(N_ITEMS))
    if (source or {}).get("shifted") or version.notes == "other set":
        ids = tuple(f"other{i}" for i in range(N_ITEMS))
    return HeldOutOutputs(
        held_out=HeldOutSet(name="demo held-out", item_ids=ids, source={"set": "demo"}),
        metric="auroc",
        targets={"labels": LABELS.tolist()},
        scores=_scores(skill),
    )


@pytest.fixture(autouse=True)
def demo_family():
    kind = catalogue.ModelKind(
        label="governance demo", tasks=lambda: [TASK], load=bytes, validate=demo_validate
    )
    catalogue._kinds.append(kind)
    clear_model_cache()
    yield
    catalogue._kinds.remove(kind)
    clear_model_cache()


@pytest.fixture
def second_admin(db):
    return UserFactory(username="madmin2", roles=[Role.MODEL_ADMIN], is_staff=True)


def register(user, skill: float, notes: str = "") -> ModelVersion:
    return model_version_register(
        task=TASK, artifact=f"{skill}".encode(), created_by=user, notes=notes
    )


def validated(version, run_job) -> ModelValidation:
    job = Job.objects.get(
        kind="registry.validate", params__validation_id=version.validations.get(status="pending").pk
    )
    run_job(job)
    return version.validations.order_by("-id").first()


def serve_first(users, run_job) -> ModelVersion:
    v1 = register(users.model_admin, 2.0)
    validated(v1, run_job)
    return model_version_activate(version=v1, user=users.model_admin, reason="first model")


def test_registering_queues_one_validation_job_that_stores_the_metric(users, run_job):
    version = register(users.model_admin, 2.0)
    jobs = Job.objects.filter(kind="registry.validate")
    assert jobs.count() == 1 and jobs.get().patient_id is None
    # A second request while one is pending queues nothing new.
    model_validation_start(version=version, user=users.model_admin)
    assert jobs.count() == 1
    validation = validated(version, run_job)
    assert validation.status == ModelValidation.Status.PASSED
    assert 0.85 < validation.value < 1 and validation.ci_low < validation.value < validation.ci_high
    assert validation.compared_to is None and "No version in service" in validation.verdict
    locked = ModelHeldOut.objects.get(task=TASK)
    assert validation.held_out == locked and locked.size == N_ITEMS
    # A redelivery of the finished job changes nothing.
    run_job(jobs.get())
    assert ModelValidation.objects.filter(version=version).count() == 1


def test_paired_comparison_against_the_version_in_service(users, run_job):
    serve_first(users, run_job)
    worse = register(users.model_admin, 0.3)
    validation = validated(worse, run_job)
    assert validation.compared_to.version == 1 and validation.paired
    assert validation.diff < 0 and validation.diff_high < 0  # significantly worse
    assert validation.status == ModelValidation.Status.FAILED and validation.passed is False
    assert "significantly worse" in validation.verdict
    same = register(users.model_admin, 2.0)
    validation = validated(same, run_job)
    # The same scores on the same items: a difference of exactly zero, not significant.
    assert (validation.diff, validation.diff_low, validation.diff_high) == (0.0, 0.0, 0.0)
    assert validation.status == ModelValidation.Status.PASSED
    assert validation.held_out_ref["sha256"] == ModelHeldOut.objects.get(task=TASK).sha256


def test_a_version_scored_on_another_set_is_refused_the_comparison(users, run_job):
    serve_first(users, run_job)
    other = register(users.model_admin, 2.0, notes="other set")
    validation = validated(other, run_job)
    assert validation.status == ModelValidation.Status.FAILED and validation.diff is None
    assert "not on the task's locked held-out set" in validation.verdict
    assert validation.held_out is None


def test_a_version_that_cannot_be_scored_records_why(users, run_job):
    version = register(users.model_admin, 2.0)
    ModelVersion.objects.filter(pk=version.pk).update(task="governance.nohook")
    job = Job.objects.get(kind="registry.validate")
    assert run_job(job).status == Job.Status.SUCCEEDED
    validation = ModelValidation.objects.get(version=version)
    assert validation.status == ModelValidation.Status.ERROR
    assert "cannot be validated" in validation.error


def test_four_eyes_approval_is_refused_to_the_trainer_and_non_admins(users, run_job, second_admin):
    version = register(users.model_admin, 2.0)
    validated(version, run_job)
    with pytest.raises(ValidationError, match="second model admin"):
        model_version_approve(version=version, user=users.model_admin, reason="looks good")
    for outsider in (users.clinician_a, users.researcher):
        with pytest.raises(ValidationError, match="Only a model admin"):
            model_version_approve(version=version, user=outsider, reason="looks good")
    with pytest.raises(ValidationError, match="reason"):
        model_version_approve(version=version, user=second_admin, reason="   ")
    assert not ModelApproval.objects.exists()
    approval = model_version_approve(version=version, user=second_admin, reason="AUROC holds")
    version.refresh_from_db()
    assert approval.override is False and approval.validation_status == "passed"
    assert version.approved_by == second_admin and version.approved_at is not None
    event = AuditEvent.objects.get(action=AuditEvent.Action.MODEL_APPROVED)
    assert event.actor == second_admin and event.detail["reason"] == "AUROC holds"


def test_a_failed_or_unfinished_validation_needs_a_recorded_override(users, run_job, second_admin):
    serve_first(users, run_job)
    pending = register(users.model_admin, 2.0)
    with pytest.raises(ValidationError, match="still being validated"):
        model_version_approve(version=pending, user=second_admin, reason="urgent")
    worse = register(users.model_admin, 0.3)
    validated(worse, run_job)
    with pytest.raises(ValidationError, match="failed its validation"):
        model_version_approve(version=worse, user=second_admin, reason="fine")
    approval = model_version_approve(
        version=worse, user=second_admin, reason="better calibrated on site data", override=True
    )
    assert approval.override and approval.validation_status == "failed"
    event = AuditEvent.objects.filter(action=AuditEvent.Action.MODEL_APPROVED).get()
    assert event.detail["override"] is True and event.detail["validation"] == "failed"


def test_activation_requires_approval_except_the_bootstrap(users, run_job, second_admin):
    v1 = register(users.model_admin, 2.0)
    with pytest.raises(ValidationError, match="reason"):
        model_version_activate(version=v1, user=users.model_admin, reason="")
    # No version of the task has ever been in service: bootstrap, recorded as such.
    model_version_activate(version=v1, user=users.model_admin, reason="first start")
    activation = ModelActivation.objects.get(version=v1)
    assert activation.kind == ModelActivation.Kind.BOOTSTRAP
    assert activation.reason.startswith("bootstrap: no version in service")
    v2 = register(users.model_admin, 2.0)
    validated(v2, run_job)
    with pytest.raises(ValidationError, match="has not been approved"):
        model_version_activate(version=v2, user=users.model_admin, reason="newer")
    # Retiring every version does not reopen the bootstrap: the task has served before.
    ModelVersion.objects.filter(pk=v1.pk).update(status=ModelVersion.Status.RETIRED)
    with pytest.raises(ValidationError, match="has not been approved"):
        model_version_activate(version=v2, user=users.model_admin, reason="newer")
    model_version_approve(version=v2, user=second_admin, reason="passed")
    model_version_activate(version=v2, user=users.model_admin, reason="passed and approved")
    v2.refresh_from_db()
    assert v2.status == ModelVersion.Status.ACTIVE and v2.approved_by == second_admin
    kinds = list(
        AuditEvent.objects.filter(action=AuditEvent.Action.MODEL_ACTIVATED).values_list(
            "detail__kind", flat=True
        )
    )
    assert sorted(kinds) == ["activated", "bootstrap"]


def test_rollback_restores_the_previous_version_for_new_work(users, run_job, second_admin):
    v1 = serve_first(users, run_job)
    v2 = register(users.model_admin, 2.5)
    validated(v2, run_job)
    model_version_approve(version=v2, user=second_admin, reason="better")
    model_version_activate(version=v2, user=second_admin, reason="better")
    assert load_active_model(TASK, bytes).version.pk == v2.pk  # the worker cache holds v2
    restored = model_version_rollback(task=TASK, user=second_admin, reason="alerts doubled")
    assert restored.pk == v1.pk
    # The next piece of work loads v1 again, with no restart.
    loaded = load_active_model(TASK, bytes)
    assert loaded.version.pk == v1.pk and loaded.model == b"2.0"
    event = AuditEvent.objects.get(action=AuditEvent.Action.MODEL_ROLLED_BACK)
    assert event.detail == {"from_version": 2, "reason": "alerts doubled"}


def governance_url(version) -> str:
    return f"/models/{version.pk}/governance/"


def test_timeline_page_shows_the_record_and_its_access_is_limited(
    users, run_job, second_admin, client_for
):
    serve_first(users, run_job)
    v2 = register(users.model_admin, 0.3)
    validated(v2, run_job)
    model_version_approve(version=v2, user=second_admin, reason="site data", override=True)
    for refused in (users.clinician_a, users.researcher):
        assert client_for(refused).get(governance_url(v2)).status_code == 403
    page = client_for(second_admin).get(governance_url(v2))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="validation-chart"' in html and "difference (paired)" in html
    assert 'data-kind="override"' in html and "site data" in html
    assert 'data-kind="registered"' in html and 'data-kind="validation"' in html
    assert "<script>" not in html  # the chart is JSON data, drawn by the static module
    kinds = [entry.kind for entry in model_version_timeline(version=v2)]
    assert kinds[0] == "registered" and "override" in kinds


def test_page_actions_validate_approve_activate_and_roll_back(
    users, run_job, second_admin, client_for
):
    v1 = serve_first(users, run_job)
    v2 = register(users.model_admin, 2.0)
    validated(v2, run_job)
    trainer, reviewer = client_for(users.model_admin), client_for(second_admin)
    # The trainer's own approval is refused with the reason, as a 400.
    response = trainer.post(f"/models/{v2.pk}/approve/", {"reason": "mine"})
    assert response.status_code == 400 and b"second model admin" in response.content
    assert reviewer.post(f"/models/{v2.pk}/approve/", {"reason": ""}).status_code == 400
    response = reviewer.post(f"/models/{v2.pk}/approve/", {"reason": "holds up"})
    assert response.status_code == 302
    response = reviewer.post(f"/models/{v2.pk}/activate/", {"activate-reason": ""})
    assert response.status_code == 400
    response = reviewer.post(f"/models/{v2.pk}/activate/", {"activate-reason": "approved"})
    assert response.status_code == 302
    v2.refresh_from_db()
    assert v2.status == ModelVersion.Status.ACTIVE
    response = reviewer.post(f"/models/{v2.pk}/rollback/", {"rollback-reason": "drift"})
    assert response.status_code == 302 and response["Location"] == governance_url(v1)
    v1.refresh_from_db()
    assert v1.status == ModelVersion.Status.ACTIVE
    assert reviewer.post(f"/models/{v1.pk}/validate/").status_code == 302
    assert ModelValidation.objects.filter(version=v1, status="pending").count() == 1
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.MODEL_VALIDATION_REQUESTED, actor=second_admin
    ).exists()
    # Clinicians cannot act.
    clinician = client_for(users.clinician_a)
    assert clinician.post(f"/models/{v2.pk}/approve/", {"reason": "x"}).status_code == 403
    assert client_for(users.model_admin).get("/models/999999/governance/").status_code == 404


def test_model_facts_card_shows_the_release_record(users, run_job, second_admin):
    v1 = serve_first(users, run_job)
    section = next(s for s in model_version_card(v1) if s.key == "release")
    rows = dict(section.rows)
    assert rows["Validation (passed)"].startswith("AUROC")
    assert rows["Approved"] == "not approved"
    assert "put into service without approval" in rows["In service since"]
    assert rows["Shadow record"] == "none recorded"
    v2 = register(users.model_admin, 2.0)
    validated(v2, run_job)
    model_version_approve(version=v2, user=second_admin, reason="ok")
    rows = dict(next(s for s in model_version_card(v2) if s.key == "release").rows)
    assert rows["Approved"].startswith("by madmin2 on ") and rows["Override"] == "no"
    assert "vs v1: +0.000" in rows["Validation (passed)"]


def test_timeline_hook_adds_entries_and_card_rows(users, run_job):
    from django.utils import timezone

    from medai_site.registry import governance
    from medai_site.registry.governance import TimelineEntry, governance_timeline_register

    v1 = serve_first(users, run_job)
    governance_timeline_register(
        key="test-shadow",
        entries=lambda version: [
            TimelineEntry(at=timezone.now(), kind="shadow", title="Shadow period", text="7 days")
        ],
        card_rows=lambda version: [("Shadow record", "7 days beside v0, 98 % agreement")],
    )
    try:
        assert "shadow" in [e.kind for e in model_version_timeline(version=v1)]
        rows = dict(next(s for s in model_version_card(v1) if s.key == "release").rows)
        assert rows["Shadow record"] == "7 days beside v0, 98 % agreement"
    finally:
        governance._sources.pop("test-shadow")


def test_a_validation_whose_job_gave_up_can_be_queued_again(users):
    version = register(users.model_admin, 2.0)
    stuck = version.validations.get()
    Job.objects.filter(pk=stuck.job_id).update(status=Job.Status.FAILED, error="worker lost")
    fresh = model_validation_start(version=version, user=users.model_admin)
    stuck.refresh_from_db()
    assert fresh.pk != stuck.pk and fresh.status == ModelValidation.Status.PENDING
    assert stuck.status == ModelValidation.Status.ERROR and "worker lost" in stuck.error
