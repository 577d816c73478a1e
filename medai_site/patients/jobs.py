"""The patient-import job (default queue): reads the rows, then creates patients atomically."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from medai_site.jobs.models import Job
from medai_site.jobs.runtime import Progress, job_row, job_task
from medai_site.patients.models import PatientImport
from medai_site.patients.services import patient_import_finish
from medai_site.patients.sources import (
    BUILTIN_SOURCES,
    PatientRow,
    RowError,
    builtin_rows,
    csv_rows,
)

MAX_REPORTED_ERRORS = 200


@job_task(kind="patients.import", label="patient import", queue="default", patient_data=True)
def import_patients(job: Job, progress: Progress) -> dict[str, Any]:
    record = job_row(
        PatientImport.objects,
        job=job,
        param="import_id",
        missing="The import record no longer exists.",
    )
    if record.source == "csv":
        with record.file.open("rb") as handle:
            content = handle.read()
        source_label = f"CSV upload {record.original_name}".strip()
        rows_iter = csv_rows(content)
        expected = max(1, content.count(b"\n"))
    else:
        source = BUILTIN_SOURCES[record.source]
        source_label = source.label.split(" (")[0]
        rows_iter = builtin_rows(source)
        expected = max(1, sum(1 for _ in source.path.open(encoding="utf-8")) - 1)
    if record.limit:
        expected = min(expected, record.limit)

    progress.update(1, "Reading and validating rows", force=True)
    rows: list[PatientRow] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for count, item in enumerate(rows_iter, start=1):
        if isinstance(item, RowError):
            errors.append({"line": item.line, "message": item.message})
        elif item.mrn in seen:
            errors.append(
                {"line": item.line, "message": f"MRN {item.mrn} appears twice in the file"}
            )
        else:
            seen.add(item.mrn)
            rows.append(item)
        if record.limit and len(rows) >= record.limit:
            break
        if count % 25 == 0:
            progress.update(min(80.0, 80.0 * count / expected), f"Validated {count} rows")
    record.errors = errors[:MAX_REPORTED_ERRORS]

    progress.update(85, f"Saving {len(rows)} patients", force=True)
    with progress.finishing() as outcome:
        imported, skipped = patient_import_finish(
            record=record, rows=rows, user=job.owner, source_label=source_label
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
