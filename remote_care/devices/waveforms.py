"""Raw ECG/PPG recordings from devices: limits, compact storage, and the service that stores one
and queues its analysis job."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from django.db import transaction
from numpy.typing import NDArray

from medai_site.jobs.services import job_create
from remote_care.models import Device, Waveform

JOB_KIND = "remote_care.waveform"
MIN_FS, MAX_FS = 25.0, 2000.0  # Hz: below 25 a pulse peak is not resolved; above is not a wearable
MIN_SECONDS = 10.0  # fewer seconds hold too few beats for a heart rate
MAX_SECONDS = 600.0  # one request carries at most 10 minutes ...
MAX_SAMPLES = 300_000  # ... and at most this many samples (about 6 MB of JSON)


class WaveformRejected(ValueError):
    """A recording refused as posted; ``too_large`` marks the 413 cases."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


@dataclass(frozen=True)
class StoredWaveform:
    waveform: Waveform
    job_id: int


def samples_pack(samples: NDArray[np.float64]) -> bytes:
    """float samples -> zlib-compressed little-endian float32 bytes."""
    return zlib.compress(np.asarray(samples, dtype="<f4").tobytes(), level=6)


def samples_unpack(blob: bytes | memoryview) -> NDArray[np.float64]:
    """Inverse of ``samples_pack`` (as float64)."""
    return np.frombuffer(zlib.decompress(bytes(blob)), dtype="<f4").astype(np.float64)


def samples_check(samples: Any, fs: float) -> NDArray[np.float64]:
    """The samples as a finite float array; WaveformRejected when they break the limits."""
    if not MIN_FS <= fs <= MAX_FS:
        raise WaveformRejected(f"sampling_rate must be between {MIN_FS:g} and {MAX_FS:g} Hz.")
    if not isinstance(samples, list) or not samples:
        raise WaveformRejected("samples must be a non-empty list of numbers.")
    if len(samples) > MAX_SAMPLES or len(samples) / fs > MAX_SECONDS:
        raise WaveformRejected(
            f"At most {MAX_SAMPLES} samples and {MAX_SECONDS:g} s per recording; this one has "
            f"{len(samples)} samples ({len(samples) / fs:.1f} s). Split it.",
            too_large=True,
        )
    if len(samples) / fs < MIN_SECONDS:
        raise WaveformRejected(f"A recording must last at least {MIN_SECONDS:g} s.")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in samples):
        raise WaveformRejected("samples must contain numbers only.")
    try:
        array = np.asarray(samples, dtype=np.float64)
    except OverflowError:  # an int beyond float's range
        raise WaveformRejected("samples must be finite numbers (one is too large).") from None
    if not np.isfinite(array).all():
        bad = int(np.flatnonzero(~np.isfinite(array))[0])
        raise WaveformRejected(
            f"samples must be finite numbers (not NaN or Infinity); sample {bad} is not."
        )
    return array


def waveform_store(
    *, device: Device, kind: str, fs: float, started_at: datetime, samples: NDArray[np.float64]
) -> StoredWaveform:
    """Store a checked recording for the device's patient and queue its analysis (one commit)."""
    with transaction.atomic():
        waveform = Waveform.objects.create(
            patient=device.patient,
            device=device,
            kind=kind,
            fs=fs,
            started_at=started_at,
            n_samples=int(samples.size),
            samples=samples_pack(samples),
        )
        job = job_create(
            kind=JOB_KIND,
            owner=device.registered_by,
            # Not the device label: clinicians type it freely (it may name the patient), and
            # staff see job titles.
            title=f"{waveform.get_kind_display()} analysis"[:200],
            params={"waveform_id": waveform.pk},
            patient=device.patient,
            target=waveform,
        )
        waveform.job = job
        waveform.save(update_fields=["job"])
    return StoredWaveform(waveform=waveform, job_id=job.pk)
