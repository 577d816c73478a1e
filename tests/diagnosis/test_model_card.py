"""The model card says what a version reads and how it flags the rest, in plain words: on the
registry's change form (model admins) and on the monitoring page; an imported artifact's
contract and detector are recorded like a trained one's."""

from __future__ import annotations

import pytest

from diagnosis.imaging.contract import contract_declare
from diagnosis.model_card import detector_section
from medai_site.registry.models import ModelVersion
from tests.platform.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db

OOD = {
    "method": "maha-layers+knn",
    "quantile": 0.99,
    "threshold": 2.7897,
    "val_flag_rate": 0.0101,
    "test_flag_rate": 0.025,
    "test_images": 624,
    "synthetic": {
        "noise": {"images": 100, "flagged": 100, "rate": 1.0},
        "inverted": {"images": 100, "flagged": 49, "rate": 0.49},
    },
}


def _version(**metrics):
    contract = contract_declare({}, names=["pneumoniamnist"])
    contract["min_size"] = [28, 28]
    return ModelVersionFactory(
        task="diagnosis.pneumonia",
        metrics={"test_auc": 0.97, "contract": contract, "ood": OOD, **metrics},
    )


def test_admin_card_states_contract_and_detector_rates(users, client_for) -> None:
    version = _version()
    page = client_for(users.model_admin).get(f"/admin/registry/modelversion/{version.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-card-section="contract"' in html and 'data-card-section="detector"' in html
    assert "Reads chest radiographs (CR/DX, chest)." in html
    assert "<dt>views</dt><dd>PA, AP</dd>" in html
    assert "<dt>minimum size</dt><dd>28 x 28 pixels</dd>" in html
    assert "99th percentile of validation images" in html and "2.790" in html
    assert "<dt>false flags, test (in distribution)</dt><dd>2.5 % of 624 test images</dd>" in html
    assert "<dt>detected: inverted contrast</dt><dd>49.0 % (49 of 100)</dd>" in html


def test_card_of_a_version_without_contract_or_detector_says_so(users, client_for) -> None:
    version = ModelVersionFactory(task="diagnosis.pneumonia", metrics={"test_auc": 0.9})
    html = (
        client_for(users.model_admin)
        .get(f"/admin/registry/modelversion/{version.pk}/change/")
        .content.decode()
    )
    assert "No input contract was recorded for this version" in html
    assert "has no out-of-distribution detector" in html


def test_detector_summary_quotes_the_test_false_flag_rate() -> None:
    section = detector_section(OOD)
    assert "above 2.79" in section.summary and "2.5 %" in section.summary
    assert dict(section.rows)["false flags, validation"] == "1.0 %"


def test_import_records_the_artifacts_contract_and_detector(users, tiny_artifact, tmp_path) -> None:
    from django.core.management import call_command

    from diagnosis.ml.artifact import artifact_bytes, load_artifact

    bundle = load_artifact(tiny_artifact)
    bundle.contract = {**contract_declare({}, names=["pneumoniamnist"]), "min_size": [28, 28]}
    path = tmp_path / "model.bin"
    path.write_bytes(artifact_bytes(bundle))
    call_command("import_model_version", "diagnosis.pneumonia", str(path), "--user", "madmin")
    version = ModelVersion.objects.get()
    assert version.metrics["contract"]["modalities"] == ["CR", "DX"]
    assert version.metrics["ood"]["threshold"] == pytest.approx(bundle.ood.threshold)
    assert "synthetic" in version.metrics["ood"]  # measured when the tiny model was trained
