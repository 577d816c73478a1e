"""Model registry: numbering, one active version per task, activation history, worker cache."""

from __future__ import annotations

import hashlib

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from medai_site.audit.models import AuditEvent
from medai_site.registry.loader import ArtifactCorrupt, NoActiveModel, load_active_model
from medai_site.registry.models import ModelVersion
from medai_site.registry.services import (
    model_version_activate,
    model_version_approve,
    model_version_publish,
    model_version_register,
    model_version_retire,
    model_version_rollback,
    model_version_trained_summary,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    from medai_site.registry.loader import clear_model_cache

    clear_model_cache()
    yield
    clear_model_cache()


@pytest.fixture
def second_admin(db):
    from medai_site.core.roles import Role
    from tests.platform.factories import UserFactory

    return UserFactory(username="madmin2", roles=[Role.MODEL_ADMIN], is_staff=True)


def approve(version, by) -> None:
    # demo.task has no validation hook: a second admin approves with the recorded override.
    model_version_approve(version=version, user=by, reason="reviewed", override=True)


def activate(version, user) -> ModelVersion:
    return model_version_activate(version=version, user=user, reason="test")


def register(user, payload=b"weights-1", **kwargs) -> ModelVersion:
    return model_version_register(
        task="demo.task", artifact=payload, created_by=user, metrics={"auc": 0.9}, **kwargs
    )


def test_register_numbers_versions_and_hashes_artifact(users):
    v1 = register(users.model_admin, b"a")
    v2 = register(users.model_admin, b"b")
    assert (v1.version, v2.version) == (1, 2)
    assert v1.sha256 == hashlib.sha256(b"a").hexdigest()
    assert v1.artifact.read() == b"a"
    assert "demo.task/v1-" in v1.artifact.name


def test_activation_retires_previous_and_is_audited(users, second_admin):
    v1, v2 = register(users.model_admin), register(users.model_admin, b"x")
    activate(v1, users.model_admin)
    approve(v2, second_admin)
    activate(v2, users.model_admin)
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert v1.status == ModelVersion.Status.RETIRED
    assert v2.status == ModelVersion.Status.ACTIVE and v2.activated_by == users.model_admin
    assert AuditEvent.objects.filter(action="model_activated").count() == 2


def test_publish_without_activation_leaves_the_active_version_in_service(users):
    v1 = register(users.model_admin)
    activate(v1, users.model_admin)
    v2 = model_version_publish(
        task="demo.task", artifact=b"x", created_by=users.model_admin, activate=False
    )
    v1.refresh_from_db()
    assert (v1.status, v2.status) == (ModelVersion.Status.ACTIVE, ModelVersion.Status.READY)
    assert model_version_trained_summary(version=v2, finding="AUC 0.900") == (
        "Trained demo.task v2: AUC 0.900 (awaiting approval: it goes into service once a "
        "second model admin has approved it, with its held-out validation in view, on its "
        "governance page)."
    )


def test_publish_with_activation_bootstraps_only_a_task_never_in_service(users):
    v1 = model_version_publish(
        task="demo.task",
        artifact=b"x",
        created_by=users.model_admin,
        activate=True,
        metrics={"auc": 0.95},
        notes="Trained by job #7.",
    )
    assert v1.status == ModelVersion.Status.ACTIVE and v1.activated_by == users.model_admin
    assert (v1.metrics, v1.notes) == ({"auc": 0.95}, "Trained by job #7.")
    assert v1.approved_by is None  # activation never approves
    assert v1.activations.get().kind == "bootstrap"
    assert AuditEvent.objects.filter(action="model_activated").count() == 1
    assert model_version_trained_summary(version=v1) == "Trained demo.task v1 (now in service)."
    # Retraining: the new version waits for a second admin instead of replacing v1.
    v2 = model_version_publish(
        task="demo.task", artifact=b"y", created_by=users.model_admin, activate=True
    )
    v1.refresh_from_db()
    assert (v1.status, v2.status) == (ModelVersion.Status.ACTIVE, ModelVersion.Status.READY)
    assert "awaiting approval" in model_version_trained_summary(version=v2)


def test_a_failed_activation_on_publish_registers_nothing(users, monkeypatch):
    import medai_site.registry.services as registry_services

    def refuse(**kwargs):
        raise ValidationError("refused")

    monkeypatch.setattr(registry_services, "model_version_activate", refuse)
    with pytest.raises(ValidationError):
        model_version_publish(
            task="demo.task", artifact=b"x", created_by=users.model_admin, activate=True
        )
    assert not ModelVersion.objects.filter(task="demo.task").exists()


def test_database_refuses_two_active_versions(users):
    v1, v2 = register(users.model_admin), register(users.model_admin, b"x")
    activate(v1, users.model_admin)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=v2.pk).update(status=ModelVersion.Status.ACTIVE)


def test_rollback_returns_to_previous_version(users, second_admin):
    v1, v2 = register(users.model_admin), register(users.model_admin, b"x")
    activate(v1, users.model_admin)
    approve(v2, second_admin)
    activate(v2, users.model_admin)
    with pytest.raises(ValidationError, match="reason"):
        model_version_rollback(task="demo.task", user=users.model_admin, reason=" ")
    restored = model_version_rollback(
        task="demo.task", user=users.model_admin, reason="alert rate doubled"
    )
    assert restored.pk == v1.pk and restored.status == ModelVersion.Status.ACTIVE
    event = AuditEvent.objects.get(action="model_rolled_back")
    assert event.detail["reason"] == "alert rate doubled"
    assert restored.activations.first().kind == "rolled_back"


def test_rollback_without_history_is_refused(users):
    v1 = register(users.model_admin)
    activate(v1, users.model_admin)
    with pytest.raises(ValidationError, match="no earlier version"):
        model_version_rollback(task="demo.task", user=users.model_admin, reason="test")


def test_failed_version_cannot_be_activated(users):
    v1 = register(users.model_admin)
    ModelVersion.objects.filter(pk=v1.pk).update(status=ModelVersion.Status.FAILED)
    v1.refresh_from_db()
    with pytest.raises(ValidationError):
        activate(v1, users.model_admin)


def test_retire(users):
    v1 = register(users.model_admin)
    activate(v1, users.model_admin)
    model_version_retire(version=v1, user=users.model_admin)
    v1.refresh_from_db()
    assert v1.status == ModelVersion.Status.RETIRED


def test_loader_caches_and_notices_activation_change(users, second_admin):
    loads = []

    def load(content: bytes) -> str:
        loads.append(content)
        return content.decode()

    with pytest.raises(NoActiveModel):
        load_active_model("demo.task", load)
    v1, v2 = register(users.model_admin, b"one"), register(users.model_admin, b"two")
    activate(v1, users.model_admin)
    assert load_active_model("demo.task", load).model == "one"
    assert load_active_model("demo.task", load).model == "one"
    assert loads == [b"one"]  # cached in the process
    approve(v2, second_admin)
    activate(v2, users.model_admin)
    loaded = load_active_model("demo.task", load)
    assert loaded.model == "two" and loaded.version.pk == v2.pk  # no restart needed


def test_loader_refuses_tampered_artifact(users):
    v1 = register(users.model_admin, b"one")
    activate(v1, users.model_admin)
    with open(v1.artifact.path, "wb") as handle:
        handle.write(b"tampered")
    with pytest.raises(ArtifactCorrupt):
        load_active_model("demo.task", bytes)


def test_admin_links_to_governance_and_draws_charts(users, client_for):
    v1 = register(users.model_admin, b"one")
    ModelVersion.objects.filter(pk=v1.pk).update(
        metrics={
            "auc": 0.95,
            "history": [
                {"epoch": 1, "train_loss": 0.5, "val_auc": 0.9},
                {"epoch": 2, "train_loss": 0.3, "val_auc": 0.93},
            ],
        }
    )
    client = client_for(users.model_admin)
    page = client.get(f"/admin/registry/modelversion/{v1.pk}/change/")
    assert page.status_code == 200
    assert b'id="metric-chart-0"' in page.content and b"val_auc" in page.content
    assert b"vendor/plotly/plotly.min.js" in page.content
    governance = f"/models/{v1.pk}/governance/".encode()
    assert governance in page.content
    listing = client.get("/admin/registry/modelversion/")
    assert governance in listing.content
    # Activation needs a written reason: it is no longer a bare admin action.
    client.post(
        "/admin/registry/modelversion/", {"action": "activate", "_selected_action": [v1.pk]}
    )
    v1.refresh_from_db()
    assert v1.status == ModelVersion.Status.READY


def test_evaluation_charts_from_classification_metrics(users):
    from medai_site.registry.charts import evaluation_figures

    v1 = register(users.model_admin, b"one")
    v1.metrics = {
        "test_auc": 0.9,
        "test": {
            "auc": 0.9,
            "class_names": ["normal", "pneumonia"],
            "roc": {"pneumonia": {"fpr": [0, 0.1, 1], "tpr": [0, 0.8, 1]}},
            "confusion_matrix": [[50, 5], [8, 90]],
            "reliability_after": {
                "confidence": [0.2, None, 0.9],
                "accuracy": [0.25, None, 0.85],
                "ece": 0.04,
            },
        },
    }
    titles = [f["layout"]["title"]["text"] for f in evaluation_figures(v1)]
    assert titles == [
        "ROC curve (test split)",
        "Confusion matrix (test split)",
        "Calibration (test split)",
    ]
    calibration = evaluation_figures(v1)[2]["data"][0]
    assert calibration["x"] == [0.2, 0.9]  # empty bins are left out, not drawn as zero
    v1.metrics = {"auc": 0.9}
    assert evaluation_figures(v1) == []


def test_a_failed_row_save_leaves_no_artifact_file(users, settings, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise IntegrityError("the database refused the row")

    monkeypatch.setattr(ModelVersion, "save", refuse)
    with pytest.raises(IntegrityError):
        register(users.model_admin, b"weights")
    models_dir = settings.MEDIA_ROOT / "models"
    left = [p for p in models_dir.rglob("*") if p.is_file()] if models_dir.exists() else []
    assert left == [] and not ModelVersion.objects.exists()


def artifact_files(settings) -> list:
    folder = settings.MEDIA_ROOT / "models"
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def import_command(task, path, *extra):
    from django.core.management import call_command

    call_command("import_model_version", task, str(path), "--user", "madmin", *extra)


def test_import_refuses_a_task_no_app_declares(users, tiny_artifact, settings, tmp_path):
    from django.core.management import CommandError

    path = tmp_path / "model.bin"
    path.write_bytes(tiny_artifact)
    with pytest.raises(CommandError, match="No app declares the model task 'anything.at_all'") as e:
        import_command("anything.at_all", path)
    # The message lists what can be imported, from every app that declares tasks.
    assert "diagnosis.pneumonia" in str(e.value) and "remote_care.deterioration" in str(e.value)
    assert not ModelVersion.objects.exists() and artifact_files(settings) == []


def test_import_refuses_an_artifact_of_another_kind(users, tiny_artifact, settings, tmp_path):
    from django.core.management import CommandError

    path = tmp_path / "model.bin"
    path.write_bytes(tiny_artifact)  # an imaging classifier
    with pytest.raises(CommandError, match="does not load as a deterioration risk model"):
        import_command("remote_care.deterioration", path, "--activate")
    path.write_bytes(b"not a model at all")
    with pytest.raises(CommandError, match="does not load as a imaging classifier|does not load"):
        import_command("diagnosis.pneumonia", path)
    assert not ModelVersion.objects.exists() and artifact_files(settings) == []


def test_import_registers_and_activates(users, tiny_artifact, settings, tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(tiny_artifact)
    import_command("diagnosis.pneumonia", path, "--activate")
    version = ModelVersion.objects.get()
    assert version.status == ModelVersion.Status.ACTIVE
    assert version.training_data["classes"] == ["normal", "pneumonia"]
    assert len(artifact_files(settings)) == 1


def test_a_failed_activation_on_import_leaves_no_row_and_no_file(
    users, tiny_artifact, settings, tmp_path, monkeypatch
):
    from medai_site.registry import services

    def refuse(**kwargs):
        raise ValidationError("activation refused")

    monkeypatch.setattr(services, "model_version_activate", refuse)
    path = tmp_path / "model.bin"
    path.write_bytes(tiny_artifact)
    with pytest.raises(Exception, match="activation refused"):
        import_command("diagnosis.pneumonia", path, "--activate")
    assert not ModelVersion.objects.exists() and artifact_files(settings) == []
