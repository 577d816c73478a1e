"""The deterioration family's validation hook: AUROC on the held-out stays of set A's seeded
split, the same stays for every version, compared pairwise with the version in service."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medai_site.jobs.models import Job
from medai_site.registry.models import ModelValidation
from medai_site.registry.services import model_version_register
from remote_care.risk.services import RISK_TASK, risk_model_to_bytes
from tests.support.governance import activate_version

pytestmark = pytest.mark.django_db
SET_A = Path(__file__).resolve().parents[3] / "data" / "physionet2012"


@pytest.fixture(scope="module")
def two_small_models() -> tuple[bytes, bytes]:
    """Two tiny GRUs (one epoch each, different seeds) on the first 500 stays: seconds."""
    from remote_care.ml.physionet import load_set_a, stratified_split
    from remote_care.ml.train import TrainConfig, train_risk_model

    stays = load_set_a(SET_A / "set-a.tar.gz", SET_A / "Outcomes-a.txt", limit=500)
    split = stratified_split(np.array([s.death for s in stays]), seed=7)
    train = [stays[i] for i in split.train]
    val = [stays[i] for i in split.val]
    models = []
    for seed in (0, 1):
        config = TrainConfig(spec="vitals", seeds=(seed,), max_epochs=1, hidden=16, threads=1)
        models.append(risk_model_to_bytes(train_risk_model(train, val, config)))
    return models[0], models[1]


def run_validation(version, run_job) -> ModelValidation:
    pending = version.validations.get(status=ModelValidation.Status.PENDING)
    job = Job.objects.get(kind="registry.validate", params__validation_id=pending.pk)
    assert run_job(job).status == Job.Status.SUCCEEDED
    pending.refresh_from_db()
    return pending


def test_risk_versions_are_compared_on_the_same_held_out_stays(
    users, two_small_models, run_job, settings, tmp_path
):
    settings.MEDAI_HELDOUT_MAX_ITEMS = 150
    settings.MEDAI_CACHE_DIR = tmp_path
    first_bytes, second_bytes = two_small_models
    v1 = model_version_register(task=RISK_TASK, artifact=first_bytes, created_by=users.model_admin)
    first = run_validation(v1, run_job)
    assert first.metric == "auroc" and first.value is not None, first.error
    assert first.held_out_ref["size"] == 150 and "seed 2012" in first.held_out_ref["name"]
    activate_version(v1, users.model_admin)
    v2 = model_version_register(task=RISK_TASK, artifact=second_bytes, created_by=users.model_admin)
    second = run_validation(v2, run_job)
    assert second.held_out_ref == first.held_out_ref
    assert second.compared_to == v1 and second.paired
    assert second.diff == pytest.approx(second.value - first.value)
    assert second.diff_low <= second.diff <= second.diff_high


def test_the_facts_card_clinicians_read_shows_the_release_record(
    users, two_small_models, run_job, settings, tmp_path, client_for
):
    settings.MEDAI_HELDOUT_MAX_ITEMS = 150
    settings.MEDAI_CACHE_DIR = tmp_path
    version = model_version_register(
        task=RISK_TASK, artifact=two_small_models[0], created_by=users.model_admin
    )
    validation = run_validation(version, run_job)
    activate_version(version, users.model_admin, reason="first deterioration model")
    html = client_for(users.clinician_a).get("/remote-care/risk-model/facts/").content.decode()
    assert "Release record" in html and "data-release-record" in html
    assert f"Validation ({validation.get_status_display().lower()})" in html
    assert "put into service without approval" in html  # the bootstrap, said plainly
    assert "Shadow record" in html
