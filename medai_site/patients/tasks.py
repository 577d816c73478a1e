"""The patient-import job (default queue): reads the rows, then creates patients atomically."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from medai_site.jobs.models import Job
from medai_site.jobs.runtime import Progress, job_row, job_task
from medai_site.patients.models import PatientImport
from medai_site.patients.services import patient_import_finish
from medai_site.patients.sources import import_rows_open, import_rows_validate

MAX_REPORTED_ERRORS = 200


@job_task(kind="patients.import", label="patient import", queue="default", patient_data=True)
def import_patients(job: Job, progress: Progress) -> dict[str, Any]:
    """Validate an import's rows and create its patients with the job's success (rows whose
    MRN is registered already are skipped); the rejected lines are kept on the record."""
    record = job_row(
        PatientImport.objects,
        job=job,
        param="import_id",
        missing="The import record no longer exists.",
    )
    content = b""
    if record.source == "csv":
        with record.file.open("rb") as handle:
            content = handle.read()
    opened = import_rows_open(
        source=record.source,
        content=content,
        original_name=record.original_name,
        limit=record.limit,
    )

    def on_row(count: int) -> None:
        progress.update(min(80.0, 80.0 * count / opened.expected), f"Validated {count} rows")

    progress.update(1, "Reading and validating rows", force=True)
    rows, errors = import_rows_validate(opened=opened, limit=record.limit, on_row=on_row)
    record.errors = errors[:MAX_REPORTED_ERRORS]

    progress.update(85, f"Saving {len(rows)} patients", force=True)
    with progress.finishing() as outcome:
        imported, skipped = patient_import_finish(
            record=record, rows=rows, user=job.owner, source_label=opened.label
        )
        parts = [f"Imported {imported} patient{'s' if imported != 1 else ''}"]
        if skipped:
            parts.append(f"{skipped} skipped (MRN already registered)")
        if errors:
            parts.append(f"{len(errors)} row{'s' if len(errors) != 1 else ''} rejected")
        outcome.result = {
            "summary": "; ".join(parts) + ".",
            "url": reverse("patients:list"),
            "imported": imported,
            "skipped": skipped,
            "rejected": errors[:MAX_REPORTED_ERRORS],
        }
    return outcome.result
