"""Background work of devices: analysis of a posted ECG/PPG recording, and the observation
table's monthly partitions created ahead of time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from medai_site.celery import app
from medai_site.jobs.models import Job
from medai_site.jobs.runtime import Progress, job_row, job_task
from remote_care.devices.partitions import observation_partitions_ensure
from remote_care.devices.serializers import RANGES
from remote_care.devices.services import observations_ingest
from remote_care.devices.waveforms import JOB_KIND, samples_unpack
from remote_care.models import Waveform
from remote_care.physiology.beats import Quality, analyse


@job_task(kind=JOB_KIND, label="waveform analysis", queue="default", patient_data=True)
def waveform_analyse(job: Job, progress: Progress) -> dict[str, Any]:
    """Beat detection, HR/HRV and quality for one Waveform; stores them on the recording and,
    when the quality allows an HR, a heart-rate Observation at the recording's midpoint."""
    waveform = job_row(
        Waveform.objects.select_related("device", "patient"),
        job=job,
        param="waveform_id",
        missing="The recording to analyse no longer exists.",
    )
    progress.update(10, "detecting beats", force=True)
    analysis = analyse(samples_unpack(waveform.samples), waveform.fs, waveform.kind)
    summary = analysis.summary
    derived = {
        "hr_bpm": summary.hr_bpm,
        "hr_mean_bpm": summary.hr_mean_bpm,
        "sdnn_ms": summary.sdnn_ms,
        "rmssd_ms": summary.rmssd_ms,
        "n_beats": summary.n_beats,
        "duration_s": summary.duration_s,
        "artefact_fraction": summary.artefact_fraction,
        "quality": str(summary.quality),
        "reasons": list(summary.reasons),
    }
    progress.update(80, "storing results", force=True)
    low, high, _ = RANGES["heart_rate"]
    hr = summary.hr_bpm
    usable = summary.quality != Quality.UNUSABLE and hr is not None and low <= hr <= high
    with progress.finishing() as outcome:
        waveform.derived = derived
        fields = ["derived"]
        if usable:
            midpoint = waveform.started_at + timedelta(seconds=waveform.n_samples / waveform.fs / 2)
            result = observations_ingest(
                device=waveform.device,
                items=[{"taken_at": midpoint, "heart_rate": round(float(hr), 1)}],
            )
            if result.stored:
                waveform.observation_id = result.stored[0].pk
                fields.append("observation")
        waveform.save(update_fields=fields)
        outcome.result = {
            **derived,
            "waveform_id": waveform.pk,
            "observation_id": waveform.observation_id,
        }
    return outcome.result


@app.task(
    name="remote_care.observation_partitions_ensure",
    ignore_result=True,
    time_limit=600,
    soft_time_limit=540,
)
def observation_partitions_ensure_task() -> list[str]:
    """Create this month's and the next three months' observation partitions if missing
    (beat, daily; idempotent, nothing on SQLite). Returns the partitions created."""
    return observation_partitions_ensure(months_ahead=3)
