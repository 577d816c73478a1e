"""Beat detection, HR and HRV validated on real PhysioNet records (MIT-BIH 100, BIDMC 01)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from remote_care.physiology.beats import (
    BeatAnalysis,
    Quality,
    analyse,
    analyse_ecg,
    analyse_ppg,
    detect_pulse_peaks,
    detect_r_peaks,
    match_beats,
    windowed_hr,
)
from tests.remote_care.physiology.wfdb import read_mit_annotations, read_mit_record


@pytest.fixture(scope="module")
def mitdb_100(physio_dir):
    rec = read_mit_record(physio_dir / "mitdb" / "100.hea")
    ann = read_mit_annotations(physio_dir / "mitdb" / "100.atr")
    return rec, ann


@pytest.fixture(scope="module")
def mlii(mitdb_100) -> BeatAnalysis:
    rec, _ = mitdb_100
    return analyse_ecg(rec.signal("MLII"), rec.fs)


@pytest.fixture(scope="module")
def bidmc_01(physio_dir) -> pd.DataFrame:
    frame = pd.read_csv(physio_dir / "bidmc" / "bidmc_01_Signals.csv")
    frame.columns = [c.strip() for c in frame.columns]  # the header has ", PLETH" etc.
    return frame


# -- readers ----------------------------------------------------------------------------------


def test_format_212_reader(mitdb_100):
    rec, _ = mitdb_100
    assert rec.fs == 360.0
    assert rec.signals.shape == (650_000, 2)
    assert rec.signal_names == ("MLII", "V5")
    # Header: initial values 995 and 1011 adu, baseline 1024, gain 200 adu/mV (checksums were
    # verified by the reader, which raises on a mismatch).
    assert rec.signals[0, 0] == pytest.approx((995 - 1024) / 200)
    assert rec.signals[0, 1] == pytest.approx((1011 - 1024) / 200)
    assert -5 < rec.signals.min() and rec.signals.max() < 5
    assert json.dumps(rec.to_dict())


def test_annotation_reader_counts(mitdb_100):
    _, ann = mitdb_100
    counts = ann.counts()
    assert (counts["N"], counts["A"], counts["V"]) == (2239, 33, 1)
    assert ann.beats().size == 2273
    assert np.all(np.diff(ann.samples) >= 0)
    assert ann.samples[-1] < 650_000


def test_corrupt_record_is_rejected(mitdb_100, physio_dir, tmp_path):
    header = (physio_dir / "mitdb" / "100.hea").read_text().replace("-22131", "-22130")
    (tmp_path / "100.hea").write_text(header)
    (tmp_path / "100.dat").write_bytes((physio_dir / "mitdb" / "100.dat").read_bytes())
    with pytest.raises(ValueError, match="checksum"):
        read_mit_record(tmp_path / "100.hea")


# -- MIT-BIH 100: beat-by-beat validation -------------------------------------------------------


def test_record_100_mlii_beat_detection(mitdb_100, mlii):
    rec, ann = mitdb_100
    match = match_beats(mlii.beats, ann.beats(), rec.fs, tolerance_s=0.150)
    # Measured: 2273 TP, 0 FP, 0 FN over the whole 30 minutes. Brief target >= 0.99.
    assert match.sensitivity >= 0.997, match
    assert match.ppv >= 0.997, match
    # R-peak location, not just presence: nearly every detection is within 10 ms.
    ref = ann.beats()
    pos = np.clip(np.searchsorted(ref, mlii.beats), 1, ref.size - 1)
    offsets = np.minimum(np.abs(ref[pos] - mlii.beats), np.abs(ref[pos - 1] - mlii.beats))
    assert np.percentile(offsets / rec.fs, 95) < 0.010  # measured: 2.8 ms


def test_record_100_second_lead_also_detects(mitdb_100):
    rec, ann = mitdb_100
    v5 = analyse_ecg(rec.signal("V5"), rec.fs)
    match = match_beats(v5.beats, ann.beats(), rec.fs)
    assert match.sensitivity >= 0.99 and match.ppv >= 0.99, match


def test_record_100_heart_rate_error(mitdb_100, mlii):
    rec, ann = mitdb_100
    ref_t = ann.beats() / rec.fs
    ref_rr = np.diff(ref_t)
    assert mlii.summary.quality is Quality.GOOD
    assert mlii.summary.hr_bpm == pytest.approx(60 / np.median(ref_rr), abs=0.5)
    # HR every 10 s from all detected beats vs from the reference beats.
    duration = rec.signals.shape[0] / rec.fs
    det = windowed_hr(mlii.beats / rec.fs, 10.0, duration)
    ref = windowed_hr(ref_t, 10.0, duration)
    err = np.abs(det - ref)
    assert np.nanmean(err) < 0.5
    assert np.nanmax(err) < 3.0


def test_record_100_hrv_is_plausible(mitdb_100, mlii):
    s = mlii.summary
    # 33 atrial and 1 ventricular premature beats: the intervals around them are not NN.
    assert 2200 < s.n_nn < s.n_rr
    assert 20 < s.sdnn_ms < 80 and 20 < s.rmssd_ms < 80
    # The same figures computed from the reference normal beats only.
    rec, ann = mitdb_100
    sym = np.array(ann.symbols)
    beats_mask = np.isin(sym, ["N", "A", "V"])
    t, normal = ann.samples[beats_mask] / rec.fs, sym[beats_mask] == "N"
    nn = np.diff(t)[normal[1:] & normal[:-1]]
    assert s.sdnn_ms == pytest.approx(np.std(nn, ddof=1) * 1000, rel=0.15)


# -- BIDMC 01: PPG against ECG -----------------------------------------------------------------


def test_bidmc_ppg_heart_rate_matches_ecg(bidmc_01):
    fs = 125.0
    ecg = analyse_ecg(bidmc_01["II"].to_numpy(), fs)
    ppg = analyse_ppg(bidmc_01["PLETH"].to_numpy(), fs)
    assert ecg.summary.quality is Quality.GOOD
    assert ppg.summary.quality is Quality.GOOD
    # Measured: 91.46 vs 91.46 bpm (median NN), 91.22 vs 91.23 (mean NN).
    assert ppg.summary.hr_bpm == pytest.approx(ecg.summary.hr_bpm, abs=1.0)
    assert ppg.summary.hr_mean_bpm == pytest.approx(ecg.summary.hr_mean_bpm, abs=1.0)
    duration = len(bidmc_01) / fs
    hr_e = windowed_hr(ecg.beats / fs, 10.0, duration, ecg.nn_mask)
    hr_p = windowed_hr(ppg.beats / fs, 10.0, duration, ppg.nn_mask)
    both = np.isfinite(hr_e) & np.isfinite(hr_p)
    assert both.mean() > 0.9
    assert np.mean(np.abs(hr_e - hr_p)[both]) < 1.0
    # The pulse follows the ECG beat for beat, bar a low-perfusion stretch near 90-103 s.
    lag = int(np.median(ppg.beats[:50] - ecg.beats[np.searchsorted(ecg.beats, ppg.beats[:50]) - 1]))
    match = match_beats(ppg.beats - lag, ecg.beats, fs)
    assert match.sensitivity > 0.97 and match.ppv > 0.99, match


def test_bidmc_all_ecg_leads_agree(bidmc_01):
    rates = [analyse_ecg(bidmc_01[c].to_numpy(), 125.0).summary.hr_bpm for c in ("II", "V", "AVR")]
    assert max(rates) - min(rates) < 0.5


# -- artefacts and quality (derived from the real record) --------------------------------------


@pytest.fixture(scope="module")
def minute(mitdb_100) -> np.ndarray:
    rec, _ = mitdb_100
    return rec.signal("MLII")[: 60 * 360].copy()


def test_short_clean_recording_gives_hr_but_flags_hrv(minute):
    a = analyse_ecg(minute[: 10 * 360], 360.0)
    assert a.summary.quality is Quality.FAIR
    assert 60 < a.summary.hr_bpm < 90
    assert a.summary.sdnn_ms is None


def test_inverted_lead_is_detected(minute):
    assert analyse_ecg(-minute, 360.0).summary.quality is Quality.GOOD
    assert detect_r_peaks(-minute, 360.0).size == detect_r_peaks(minute, 360.0).size


def test_flat_line_is_unusable():
    a = analyse_ecg(np.zeros(30 * 360), 360.0)
    assert a.summary.quality is Quality.UNUSABLE
    assert a.summary.hr_bpm is None and a.beats.size == 0


def test_noise_is_never_reported_as_good():
    rng = np.random.default_rng(7)
    for seed_signal in (rng.normal(size=60 * 360), np.cumsum(rng.normal(size=60 * 360))):
        assert analyse_ecg(seed_signal, 360.0).summary.quality in (Quality.POOR, Quality.UNUSABLE)


def test_heavy_noise_downgrades_quality(minute):
    rng = np.random.default_rng(3)
    noisy = minute + rng.normal(scale=0.5, size=minute.size)
    assert analyse_ecg(noisy, 360.0).summary.quality in (Quality.POOR, Quality.UNUSABLE)


def test_nan_gap_is_not_bridged(minute):
    x = minute.copy()
    x[20 * 360 : 30 * 360] = np.nan  # 10 s lead-off
    a = analyse_ecg(x, 360.0)
    assert not np.any((a.beats >= 20 * 360) & (a.beats < 30 * 360))
    assert not np.any(a.nn_mask & (a.rr_s > 2.0))  # no RR interval spans the gap
    assert a.summary.quality is Quality.FAIR
    assert any("missing" in r for r in a.summary.reasons)
    assert a.summary.hr_bpm == pytest.approx(analyse_ecg(minute, 360.0).summary.hr_bpm, abs=1)


def test_short_nan_gap_is_interpolated(minute):
    x = minute.copy()
    x[1000:1050] = np.nan  # 140 ms dropout
    a = analyse_ecg(x, 360.0)
    assert a.summary.quality is Quality.GOOD
    assert abs(a.beats.size - detect_r_peaks(minute, 360.0).size) <= 1


def test_clipping_is_reported(minute):
    a = analyse_ecg(np.clip(minute, -0.4, 0.5), 360.0)
    assert a.summary.clipped_fraction > 0.01
    assert any("clipped" in r for r in a.summary.reasons)


def test_ppg_detector_on_synthetic_pulse():
    fs, rate = 100.0, 72.0
    t = np.arange(0, 60, 1 / fs)
    phase = (t * rate / 60) % 1
    ppg = np.exp(-(((phase - 0.2) / 0.08) ** 2)) + 0.4 * np.exp(-(((phase - 0.5) / 0.1) ** 2))
    peaks = detect_pulse_peaks(ppg, fs)
    assert abs(peaks.size - 72) <= 1
    assert analyse(ppg, fs, "ppg").summary.hr_bpm == pytest.approx(rate, abs=1)


def test_to_dict_is_json_ready(minute):
    data = analyse_ecg(minute, 360.0).to_dict()
    text = json.dumps(data)
    assert data["summary"]["quality"] == "good" and "NaN" not in text


def test_bad_arguments_are_rejected(minute):
    with pytest.raises(ValueError):
        analyse_ecg(minute, 0)
    with pytest.raises(ValueError):
        analyse_ecg(minute.reshape(2, -1), 360.0)
    with pytest.raises(ValueError):
        analyse(minute, 360.0, "eeg")


# -- small pure helpers ------------------------------------------------------------------------


def test_match_beats_one_to_one_within_tolerance():
    ref = np.array([100, 460, 820, 1180])
    det = np.array([101, 105, 470, 900, 1180])  # a double detection, a far miss
    m = match_beats(det, ref, fs=360.0, tolerance_s=0.150)  # 54 samples
    assert (m.true_positives, m.false_positives, m.false_negatives) == (3, 2, 1)
    assert m.sensitivity == 0.75 and m.ppv == 0.6
    assert match_beats([], ref, 360.0).false_negatives == 4


def test_windowed_hr():
    beats = np.arange(0, 30.01, 0.5)  # 120 bpm
    hr = windowed_hr(beats, 10.0, 30.0)
    assert np.allclose(hr, 120.0)
    assert np.isnan(windowed_hr(np.array([1.0]), 10.0, 30.0)).all()
