"""Rewrite existing job titles that carry patient identifiers (MRN, names, birth date, a
clinician-typed device label or an uploaded file's name): staff who never see patients read
job titles in the admin. New jobs are titled without them at the source."""

from __future__ import annotations

import re

from django.db import migrations

# Titles as the services wrote them before: the identifying tail goes, the rest stays.
_PATTERNS = {
    "diagnosis.inference": re.compile(r"^(Classify \d+ scans?) for .*$", re.S),
    "treatment.assessment": re.compile(r"^(Treatment options \([^)]*\)) for .*$", re.S),
    "remote_care.waveform": re.compile(r"^(.+? analysis) from .*$", re.S),
}


def _identifiers(patient) -> list[str]:
    values = [patient.mrn, patient.given_name, patient.family_name]
    if patient.birth_date is not None:
        values += [
            patient.birth_date.isoformat(),
            patient.birth_date.strftime("%d/%m/%Y"),
            patient.birth_date.strftime("%m/%d/%Y"),
        ]
    return [v.strip().lower() for v in values if v and len(v.strip()) >= 2]


def clean_title(*, kind: str, title: str, patient, import_source: str | None) -> str:
    """The title without patient identifiers (pure, so it is tested without a database)."""
    pattern = _PATTERNS.get(kind)
    if pattern is not None:
        match = pattern.match(title)
        if match:
            title = match.group(1)
    if kind == "patients.import" and import_source == "csv":
        title = "Import patients: a CSV file"
    if patient is not None:
        lowered = title.lower()
        # Whole words only: a given name "Al" must not condemn "ECG analysis".
        if any(re.search(rf"(?<!\w){re.escape(v)}(?!\w)", lowered) for v in _identifiers(patient)):
            # An unknown shape that still names the patient: nothing of it can be kept.
            title = f"{kind} job"
    return title[:200]


def forwards(apps, schema_editor) -> None:
    Job = apps.get_model("jobs", "Job")
    PatientImport = apps.get_model("patients", "PatientImport")
    csv_imports = set(PatientImport.objects.filter(source="csv").values_list("pk", flat=True))
    jobs = Job.objects.filter(patient__isnull=False) | Job.objects.filter(kind="patients.import")
    for job in jobs.select_related("patient").iterator(chunk_size=2000):
        source = "csv" if job.kind == "patients.import" and _import_id(job) in csv_imports else None
        title = clean_title(
            kind=job.kind, title=job.title, patient=job.patient, import_source=source
        )
        if title != job.title:
            Job.objects.filter(pk=job.pk).update(title=title)


def _import_id(job) -> int | None:
    value = (job.params or {}).get("import_id", job.target_id)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0002_job_live"),
        ("patients", "0002_portalaccount"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
