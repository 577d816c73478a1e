"""Waveforms: devices post ECG/PPG recordings; a job derives HR/HRV and quality and writes a
heart-rate Observation. Checked on real PhysioNet data (MIT-BIH 100, BIDMC 01)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from medai_site.jobs.models import Job
from remote_care.devices.services import device_register
from remote_care.devices.waveforms import JOB_KIND, MAX_SAMPLES, samples_pack, samples_unpack
from remote_care.models import Observation, Waveform
from remote_care.physiology.beats import analyse_ecg
from tests.platform.factories import patient_for
from tests.remote_care.physiology.wfdb import read_mit_annotations, read_mit_record

pytestmark = pytest.mark.django_db
URL = "/remote-care/api/v1/waveforms/"
START_S, SECONDS = 300, 60  # a one-minute slice of each record


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()


@pytest.fixture
def issued(users):
    patient = patient_for(users.clinician_a)
    return device_register(patient=patient, label="patch", registered_by=users.clinician_a)


@pytest.fixture(scope="module")
def mit_slice(physio_dir) -> tuple[list[float], float, float]:
    """60 s of MIT-BIH 100 MLII and the reference HR (60 / median annotated RR) over it."""
    record = read_mit_record(physio_dir / "mitdb" / "100.hea")
    beats = read_mit_annotations(physio_dir / "mitdb" / "100.atr").beats()
    lo, hi = int(START_S * record.fs), int((START_S + SECONDS) * record.fs)
    window = beats[(beats >= lo) & (beats < hi)]
    reference = 60.0 / float(np.median(np.diff(window) / record.fs))
    return record.signal("MLII")[lo:hi].round(4).tolist(), record.fs, reference


@pytest.fixture(scope="module")
def bidmc_slice(physio_dir) -> tuple[list[float], float, float]:
    """60 s of BIDMC 01 PPG and, as reference, the HR of the simultaneous ECG (lead II)."""
    frame = pd.read_csv(physio_dir / "bidmc" / "bidmc_01_Signals.csv")
    frame.columns = [c.strip() for c in frame.columns]
    fs = 125.0
    part = frame.iloc[int(START_S * fs) : int((START_S + SECONDS) * fs)]
    reference = analyse_ecg(part["II"].to_numpy(), fs).summary.hr_bpm
    return part["PLETH"].round(5).tolist(), fs, reference


def post(token: str, body: object):
    return Client().post(
        URL, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def queued_analysis(job_id: int) -> Job:
    """The recording's analysis job, still queued."""
    job = Job.objects.get(pk=job_id)
    assert job.kind == JOB_KIND and job.status == Job.Status.QUEUED
    return job


@pytest.mark.parametrize(
    ("kind", "slice_fixture", "tolerance"), [("ecg", "mit_slice", 1.0), ("ppg", "bidmc_slice", 2.0)]
)
def test_recording_is_analysed_into_heart_rate(
    issued, request, kind, slice_fixture, tolerance, run_job
):
    samples, fs, reference = request.getfixturevalue(slice_fixture)
    started = timezone.now().replace(microsecond=0) - timedelta(minutes=5)
    response = post(
        issued.token,
        {"kind": kind, "sampling_rate": fs, "started_at": started.isoformat(), "samples": samples},
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    waveform = Waveform.objects.get(pk=body["waveform"])
    assert waveform.patient == issued.device.patient and waveform.n_samples == len(samples)
    assert body["duration_s"] == pytest.approx(SECONDS)
    assert np.allclose(samples_unpack(waveform.samples), samples, atol=1e-5)

    job = run_job(queued_analysis(body["job"]))
    assert job.status == Job.Status.SUCCEEDED, job.error
    waveform.refresh_from_db()
    derived = waveform.derived
    assert derived["hr_bpm"] == pytest.approx(reference, abs=tolerance)
    assert derived["quality"] in {"good", "fair"} and derived["n_beats"] > 40
    assert derived["sdnn_ms"] is not None and derived["rmssd_ms"] is not None
    observation = Observation.objects.get(pk=waveform.observation_id)
    assert observation.taken_at == started + timedelta(seconds=SECONDS / 2)
    assert observation.heart_rate == pytest.approx(reference, abs=tolerance)
    assert observation.device == issued.device and observation.news2_total is not None
    assert job.result["observation_id"] == observation.pk


def test_unusable_recording_stores_no_heart_rate(issued, run_job):
    rng = np.random.default_rng(0)
    noise = rng.normal(size=250 * 20).round(4).tolist()  # 20 s of white noise at 250 Hz
    response = post(
        issued.token,
        {
            "kind": "ppg",
            "sampling_rate": 250,
            "started_at": "2026-01-01T08:00:00Z",
            "samples": noise,
        },
    )
    assert response.status_code == 202
    job = run_job(queued_analysis(response.json()["job"]))
    assert job.status == Job.Status.SUCCEEDED
    waveform = Waveform.objects.get()
    assert waveform.derived["quality"] == "unusable" and waveform.derived["reasons"]
    assert waveform.observation is None and not Observation.objects.exists()


def test_limits_are_enforced_with_messages(issued):
    ok_time = "2026-01-01T08:00:00Z"

    def attempt(**overrides: object):
        body = {
            "kind": "ecg",
            "sampling_rate": 250,
            "started_at": ok_time,
            "samples": [0.0] * 250 * 15,
        }
        return post(issued.token, {**body, **overrides})

    too_long = attempt(samples=[0.0] * (MAX_SAMPLES + 1))
    assert too_long.status_code == 413 and "Split it" in too_long.json()["samples"][0]
    assert attempt(sampling_rate=5).status_code == 400
    assert "at least" in attempt(samples=[0.0] * 250).json()["samples"][0]
    assert attempt(samples=[0.0, "x"] * 2000).status_code == 400
    naive = attempt(started_at="2026-01-01T08:00:00")
    assert naive.status_code == 400 and "time zone" in str(naive.json()["started_at"])
    assert attempt(kind="eeg").status_code == 400
    assert Client().post(URL, {}, content_type="application/json").status_code == 401
    assert (
        not Waveform.objects.exists() and not Job.objects.exclude(kind="registry.validate").exists()
    )


def test_samples_round_trip_compactly():
    samples = np.sin(np.linspace(0, 100, 36_000))
    blob = samples_pack(samples)
    assert len(blob) < samples.size * 4
    assert np.allclose(samples_unpack(blob), samples, atol=1e-6)


def test_non_finite_and_huge_samples_are_a_400_with_a_message(issued):
    started = (timezone.now() - timedelta(minutes=5)).isoformat()
    head = '{"kind": "ecg", "sampling_rate": %s, "started_at": "%s", "samples": [%s]}'
    ones = ", ".join(["0.1"] * 2_500)
    cases = {
        "NaN": ("samples", "not NaN or Infinity"),
        "-Infinity": ("samples", "not NaN or Infinity"),
        "1e400": ("samples", "not NaN or Infinity"),
        "9" * 400: ("samples", "not NaN or Infinity"),
        "9" * 5000: ("samples", "not NaN or Infinity"),
    }
    for value, (key, message) in cases.items():
        response = Client().post(
            URL,
            head % (250, started, f"{ones}, {value}"),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {issued.token}",
        )
        assert response.status_code == 400, (value[:10], response.content[:200])
        assert message in response.json()[key][0], response.json()
    for rate in ('"NaN"', "Infinity", "9" * 400):
        response = Client().post(
            URL,
            head % (rate, started, ones),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {issued.token}",
        )
        assert response.status_code == 400
        assert "finite number" in response.json()["sampling_rate"][0], response.json()
    assert not Waveform.objects.exists()
