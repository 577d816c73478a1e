"""The treatment family's validation hook: Harrell's C-index on the held-out trial rows, the
same rows for every version of the trial's task, compared pairwise."""

from __future__ import annotations

import pytest

from medai_site.jobs.models import Job
from medai_site.registry.models import ModelValidation
from medai_site.registry.services import model_version_register
from tests.support.governance import activate_version

pytestmark = pytest.mark.django_db


def run_validation(version, run_job) -> ModelValidation:
    pending = version.validations.get(status=ModelValidation.Status.PENDING)
    job = Job.objects.get(kind="registry.validate", params__validation_id=pending.pk)
    assert run_job(job).status == Job.Status.SUCCEEDED
    pending.refresh_from_db()
    return pending


def test_treatment_versions_are_compared_on_the_same_held_out_rows(
    users, gbsg2_artifact, run_job, settings
):
    from treatment.ml.models import ModelConfig, fit_treatment_model
    from treatment.ml.trials import load_trial

    settings.MEDAI_HELDOUT_MAX_ITEMS = 150
    v1 = model_version_register(
        task="treatment.gbsg2",
        artifact=gbsg2_artifact,
        created_by=users.model_admin,
        training_data={"trial": "gbsg2"},
    )
    first = run_validation(v1, run_job)
    assert first.metric == "c_index" and 0.55 < first.value < 0.85, first.error
    assert first.held_out_ref["size"] == 150
    assert "refit on every row" in first.details["notes"][0]
    activate_version(v1, users.model_admin)
    forest = fit_treatment_model(load_trial("gbsg2"), ModelConfig(kind="rsf", n_bootstrap=2))
    v2 = model_version_register(
        task="treatment.gbsg2", artifact=forest.to_bytes(), created_by=users.model_admin
    )
    second = run_validation(v2, run_job)
    assert second.held_out_ref == first.held_out_ref
    assert second.compared_to == v1 and second.paired and second.diff is not None
    assert second.diff_low <= second.diff <= second.diff_high
    assert second.compared_value == pytest.approx(first.value)
