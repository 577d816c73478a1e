"""Pre-trained models shipped in data/models/: verified by sha256, loadable by the product's own
loaders, refused when tampered with, and put into service by seed_demo once."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from medai_site.registry import shipped
from medai_site.registry.catalogue import model_kind_of
from medai_site.registry.models import ModelActivation, ModelValidation, ModelVersion
from medai_site.registry.shipped import (
    ShippedArtifactError,
    TrainedModel,
    shipped_artifact,
    shipped_build,
    shipped_model_install,
    shipped_models,
)

SHIPPED = {item.slug: item for item in shipped_models()}


def test_every_demo_model_is_declared_with_its_task():
    assert {slug: item.task for slug, item in SHIPPED.items()} == {
        "diagnosis-pneumonia": "diagnosis.pneumonia",
        "treatment-gbsg2": "treatment.gbsg2",
        "remote-care-deterioration": "remote_care.deterioration",
        "drugs-predictor-bbbp": "drugs.predictor.bbbp",
        "drugs-generator-prior": "drugs.generator",
    }


@pytest.mark.parametrize("slug", sorted(SHIPPED))
def test_the_shipped_artifact_verifies_and_loads_through_the_products_loader(slug, db):
    found = shipped_artifact(slug=slug)
    assert hashlib.sha256(found.content).hexdigest() == found.sha256
    # Small enough for git, and documented beside the artifact.
    assert len(found.content) < 5_000_000
    for name in ("training.log", "README.md", "metrics.json"):
        assert (found.folder / name).is_file(), name
    assert found.record["task"] == SHIPPED[slug].task
    assert SHIPPED[slug].command in (found.folder / "README.md").read_text()
    model = model_kind_of(SHIPPED[slug].task).load(found.content)
    assert model is not None


def _folder(root: Path, slug: str = "demo-model", content: bytes = b"weights") -> Path:
    folder = root / slug
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(content)
    (folder / "SHA256SUMS").write_text(f"{hashlib.sha256(content).hexdigest()}  model.bin\n")
    (folder / "metrics.json").write_text(json.dumps({"task": "x", "metrics": {"auc": 0.9}}))
    return folder


def test_a_folder_in_the_layout_is_read_whoever_wrote_it(tmp_path):
    _folder(tmp_path, "drugs-generator-prior", b"prior weights")
    found = shipped_artifact(slug="drugs-generator-prior", root=tmp_path)
    assert found.content == b"prior weights" and found.record["metrics"] == {"auc": 0.9}


def test_a_tampered_artifact_is_refused_with_a_clear_message(tmp_path):
    folder = _folder(tmp_path)
    (folder / "model.bin").write_bytes(b"weightz")
    with pytest.raises(ShippedArtifactError, match="was refused: .* has sha256 .* records"):
        shipped_artifact(slug="demo-model", root=tmp_path)


def test_a_missing_or_malformed_folder_is_refused(tmp_path):
    with pytest.raises(ShippedArtifactError, match="is missing"):
        shipped_artifact(slug="treatment-gbsg2", root=tmp_path)
    folder = _folder(tmp_path)
    (folder / "SHA256SUMS").write_text("not a checksum line\n")
    with pytest.raises(ShippedArtifactError, match="exactly one line"):
        shipped_artifact(slug="demo-model", root=tmp_path)
    (folder / "SHA256SUMS").write_text(f"{'0' * 64}  ../escape.bin\n")
    with pytest.raises(ShippedArtifactError, match="exactly one line"):
        shipped_artifact(slug="demo-model", root=tmp_path)


def test_build_writes_the_whole_layout_from_the_apps_builder(tmp_path, monkeypatch):
    def build(log):
        log.update(50, "halfway")
        return TrainedModel(task="demo.task", content=b"trained", metrics={"auc": 0.8})

    monkeypatch.setitem(
        shipped._shipped,
        "demo-model",
        shipped.ShippedModel(
            slug="demo-model",
            task="demo.task",
            artifact_name="model.bin",
            build=build,
            command="python manage.py shipped_models build demo-model",
            minutes=0.1,
            label="Demo model",
        ),
    )
    found = shipped_build(slug="demo-model", root=tmp_path)
    assert found.content == b"trained"
    assert "halfway" in (found.folder / "training.log").read_text()
    assert found.record["metrics"] == {"auc": 0.8} and found.record["seconds"] >= 0
    readme = (found.folder / "README.md").read_text()
    assert "python manage.py shipped_models build demo-model" in readme and "torch" in readme


def test_verify_command_fails_on_a_problem(tmp_path, settings):
    settings.MEDAI_SHIPPED_MODELS_DIR = tmp_path
    with pytest.raises(CommandError, match="do not verify"):
        call_command("shipped_models", "verify")


def test_install_activates_once_with_a_recorded_reason_and_a_real_validation(users, settings):
    settings.MEDAI_HELDOUT_MAX_ITEMS = 120  # a real validation, on a smaller locked set
    first = shipped_model_install(slug="treatment-gbsg2", user=users.model_admin)
    assert first.installed
    version = first.version
    assert version.status == ModelVersion.Status.ACTIVE
    assert version.sha256 == shipped_artifact(slug="treatment-gbsg2").sha256
    assert version.training_data["shipped"] == "data/models/treatment-gbsg2"
    activation = ModelActivation.objects.get(task="treatment.gbsg2")
    assert activation.kind == ModelActivation.Kind.BOOTSTRAP
    assert "data/models/treatment-gbsg2" in activation.reason
    # Validated here and now, on the task's locked held-out set, by its own job.
    validation = ModelValidation.objects.get(version=version)
    assert validation.status in {ModelValidation.Status.PASSED, ModelValidation.Status.FAILED}
    assert validation.job.status == "succeeded" and validation.held_out is not None
    assert first.validation in first.note("GBSG2 treatment model")
    # Idempotent: a second seed adds nothing.
    again = shipped_model_install(slug="treatment-gbsg2", user=users.model_admin)
    assert not again.installed and again.note("x") == ""
    assert ModelVersion.objects.filter(task="treatment.gbsg2").count() == 1


def test_a_tampered_shipped_model_is_not_installed_and_training_is_queued(
    users, settings, tmp_path
):
    from medai_site.jobs.models import Job
    from treatment.demo import demo_treatment_ensure

    folder = _folder(tmp_path, "treatment-gbsg2", b"real weights")
    (folder / "model.bin").write_bytes(b"fake weights")
    settings.MEDAI_SHIPPED_MODELS_DIR = tmp_path
    note = demo_treatment_ensure(user=users.model_admin, train=False)
    assert "was refused" in note and not ModelVersion.objects.exists()
    assert not Job.objects.filter(kind="treatment.training").exists()
    note = demo_treatment_ensure(user=users.model_admin, train=True)
    assert "queued the GBSG2 treatment model instead" in note
    assert Job.objects.filter(kind="treatment.training").count() == 1


def test_build_missing_rebuilds_only_what_does_not_verify(tmp_path, settings, monkeypatch):
    built = []

    def declare(slug):
        def build(log):
            built.append(slug)
            return TrainedModel(task=f"demo.{slug}", content=slug.encode())

        return shipped.ShippedModel(
            slug=slug,
            task=f"demo.{slug}",
            artifact_name="model.bin",
            build=build,
            command=f"python manage.py shipped_models build {slug}",
            minutes=0.1,
            label=slug,
        )

    monkeypatch.setattr(shipped, "_shipped", {s: declare(s) for s in ("kept", "gone", "bad")})
    settings.MEDAI_SHIPPED_MODELS_DIR = tmp_path
    _folder(tmp_path, "kept", b"kept")
    (_folder(tmp_path, "bad", b"bad") / "model.bin").write_bytes(b"changed")
    call_command("shipped_models", "build", "--missing")
    assert sorted(built) == ["bad", "gone"]
    call_command("shipped_models", "verify")
