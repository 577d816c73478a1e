"""Registry jobs: validating a model version on its task's locked held-out set."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from medai_site.jobs.models import Job
from medai_site.jobs.runtime import Progress, job_row, job_task
from medai_site.registry.models import ModelValidation


@job_task(kind="registry.validate", label="model validation", queue="ml")
def validate_version(job: Job, progress: Progress) -> dict[str, Any]:
    """Score the job's version on its task's held-out set, compare it with the version in
    service and store the result with the job's success; a validation already stored (a
    redelivery) is left as it is."""
    from medai_site.registry.services import model_validation_fail, model_validation_store
    from medai_site.registry.validation import validation_compute

    validation = job_row(
        ModelValidation.objects.select_related("version"),
        job=job,
        param="validation_id",
        missing="The validation no longer exists.",
    )
    url = reverse("registry:governance", args=[validation.version_id])
    if validation.status != ModelValidation.Status.PENDING:
        return {"summary": "Already validated.", "url": url}
    progress.update(5, f"Scoring {validation.version} on its held-out set", force=True)
    try:
        result = validation_compute(version=validation.version)
    except (ValueError, OSError, RuntimeError) as exc:
        # A version that cannot be scored is a validation outcome the committee sees, not a
        # crashed job: the reason is stored on the version's record.
        with progress.finishing() as outcome:
            model_validation_fail(validation=validation, error=str(exc) or type(exc).__name__)
            outcome.result = {"summary": f"Could not validate: {exc}", "url": url}
        return outcome.result
    progress.update(95, "Storing the result", force=True)
    with progress.finishing() as outcome:
        row = model_validation_store(validation=validation, result=result)
        outcome.result = {
            "summary": f"{row.version}: validation {row.get_status_display().lower()}. "
            + row.verdict,
            "url": url,
        }
    return outcome.result
