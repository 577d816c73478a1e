"""The imaging family's validation hook through the registry.validate job: two versions of a
task are scored on the same locked test split and compared pairwise."""

from __future__ import annotations

import pytest

from medai_site.jobs.models import Job
from medai_site.registry.models import ModelHeldOut, ModelValidation
from tests.diagnosis.model_versions import artifact_variant, register_version

pytestmark = pytest.mark.django_db


def run_validation(version, run_job) -> ModelValidation:
    pending = version.validations.get(status=ModelValidation.Status.PENDING)
    job = Job.objects.get(kind="registry.validate", params__validation_id=pending.pk)
    assert run_job(job).status == Job.Status.SUCCEEDED
    pending.refresh_from_db()
    return pending


def test_imaging_versions_are_compared_on_the_same_test_split(
    users, tiny_artifact, run_job, settings
):
    settings.MEDAI_HELDOUT_MAX_ITEMS = 120
    v1 = register_version(users, tiny_artifact)
    first = run_validation(v1, run_job)
    assert first.metric == "auroc" and first.value is not None, first.error
    assert first.held_out_ref["size"] == 120
    assert first.held_out_ref["name"] == "PneumoniaMNIST test split"
    # The same weights without the detector: a new version, the same scores on the same images.
    v2 = register_version(users, artifact_variant(tiny_artifact, detector=False), activate=False)
    second = run_validation(v2, run_job)
    assert second.held_out_ref == first.held_out_ref
    assert second.held_out == ModelHeldOut.objects.get(task=v1.task)
    assert second.compared_to == v1 and second.paired
    assert second.value == pytest.approx(first.value)
    assert (second.diff, second.diff_low, second.diff_high) == (0.0, 0.0, 0.0)
    assert len(second.outputs["scores"]) == 120
