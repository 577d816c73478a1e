"""Heart rate and HRV from a short ECG or PPG recording.

Pipeline (both signal types): interpolate short NaN gaps, zero-phase Butterworth band-pass,
Elgendi's two-moving-average "blocks of interest" peak detector, refinement of each peak on the
band-passed waveform, a refractory merge, then RR-interval artefact rejection before any HR or
HRV figure is computed.

* ECG: M. Elgendi, "Fast QRS detection with an optimized knowledge-based method: evaluation on
  11 standard ECG databases", PLoS ONE 8(9): e73557, 2013 (8-20 Hz band, W1 = 97 ms,
  W2 = 611 ms, beta = 0.08).
* PPG: M. Elgendi et al., "Systolic peak detection in acceleration photoplethysmograms measured
  from emergency responders in tropical conditions", PLoS ONE 8(10): e76585, 2013 (0.5-8 Hz band,
  W1 = 111 ms, W2 = 667 ms, beta = 0.02).
* HRV: Task Force of the ESC and NASPE, "Heart rate variability: standards of measurement...",
  Circulation 93:1043-1065, 1996: SDNN and RMSSD are computed on normal-to-normal (NN) intervals
  only, so intervals next to an ectopic, missed or spurious beat are excluded. The Task Force
  recommends 5-minute recordings for short-term HRV; shorter recordings are reported but flagged.

Pure numpy/scipy; nothing here imports Django. Dataclasses out, each with ``to_dict()``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage, signal

__all__ = [
    "BeatAnalysis",
    "BeatMatch",
    "HeartRateSummary",
    "Quality",
    "SignalType",
    "analyse",
    "analyse_ecg",
    "analyse_ppg",
    "detect_pulse_peaks",
    "detect_r_peaks",
    "match_beats",
    "windowed_hr",
]


class SignalType(StrEnum):
    """Kind of waveform being analysed."""

    ECG = "ecg"
    PPG = "ppg"


class Quality(StrEnum):
    """Overall usability of a recording for HR (and HRV) reporting."""

    GOOD = "good"  # HR and HRV can be shown
    FAIR = "fair"  # HR can be shown; HRV should not be relied on
    POOR = "poor"  # HR shown only with a warning
    UNUSABLE = "unusable"  # no HR should be shown


@dataclass(frozen=True)
class _DetectorConfig:
    band_hz: tuple[float, float]
    order: int
    w_peak_s: float  # W1: width of one QRS complex / systolic peak
    w_beat_s: float  # W2: width of one beat
    beta: float  # offset of the threshold above the beat-wide moving average
    refractory_s: float  # two peaks closer than this are the same beat
    refine_s: float  # half-width of the search for the true peak around a block


# Published parameters (see module docstring); the refractory periods are the physiological
# minimum of a ventricular cycle (200 ms for QRS) and of a pulse wave (300 ms, as in NeuroKit2).
_ECG = _DetectorConfig((8.0, 20.0), 3, 0.097, 0.611, 0.08, 0.200, 0.075)
_PPG = _DetectorConfig((0.5, 8.0), 2, 0.111, 0.667, 0.02, 0.300, 0.0)

# Physiological limits for an RR interval: 30-250 beats per minute.
_RR_MIN_S, _RR_MAX_S = 0.24, 2.0
# An RR interval more than this fraction away from the local median is not normal-to-normal
# (a common ectopic/artefact criterion, e.g. Kamath & Fallen's 20 % rule); 0.25 is slightly
# more lenient to keep sinus arrhythmia at slow breathing rates.
_RR_LOCAL_TOL = 0.25
_RR_MEDIAN_BEATS = 11
# Longest NaN run bridged by interpolation; longer gaps are excluded from detection.
_MAX_INTERP_GAP_S = 0.5
# A perfectly constant stretch longer than this is a flat line (lead or sensor off).
_FLATLINE_S = 1.0
# Minimum NN intervals before SDNN/RMSSD are reported at all.
_MIN_NN_FOR_HRV = 20
# Median beat-to-template correlation below which quality is capped at fair / poor / unusable.
_CORR_FAIR, _CORR_POOR, _CORR_UNUSABLE = 0.93, 0.85, 0.75
# Task Force short-term HRV recording length.
_HRV_RECORDING_S = 300.0


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeartRateSummary:
    """Recording-level HR/HRV figures; None where there is not enough clean data."""

    hr_bpm: float | None  # 60 / median NN interval: robust to residual artefacts
    hr_mean_bpm: float | None  # 60 * n / sum of NN intervals
    sdnn_ms: float | None
    rmssd_ms: float | None
    n_beats: int
    n_nn: int  # RR intervals accepted as normal-to-normal
    n_rr: int
    artefact_fraction: float  # share of the recording not covered by NN intervals
    clipped_fraction: float  # share of samples flat at the signal's extremes (saturation)
    template_correlation: float | None  # median correlation of each beat with the median beat
    duration_s: float
    quality: Quality
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "hr_bpm": self.hr_bpm,
            "hr_mean_bpm": self.hr_mean_bpm,
            "sdnn_ms": self.sdnn_ms,
            "rmssd_ms": self.rmssd_ms,
            "n_beats": self.n_beats,
            "n_nn": self.n_nn,
            "n_rr": self.n_rr,
            "artefact_fraction": self.artefact_fraction,
            "clipped_fraction": self.clipped_fraction,
            "template_correlation": self.template_correlation,
            "duration_s": self.duration_s,
            "quality": self.quality.value,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class BeatAnalysis:
    """Detected beats and the HR series derived from them.

    ``beats`` are sample indices into the input; ``rr_s[i]`` is the interval ending at
    ``beats[i + 1]``, with ``nn_mask[i]`` true when it is a normal-to-normal interval.
    ``hr_bpm`` is the instantaneous HR at ``hr_times_s`` (NaN where the interval was rejected).
    """

    signal_type: SignalType
    fs: float
    beats: NDArray[np.int64]
    rr_s: NDArray[np.float64]
    nn_mask: NDArray[np.bool_]
    hr_times_s: NDArray[np.float64]
    hr_bpm: NDArray[np.float64]
    summary: HeartRateSummary

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN HR values become None)."""
        return {
            "signal_type": self.signal_type.value,
            "fs": self.fs,
            "beats": self.beats.tolist(),
            "rr_s": self.rr_s.tolist(),
            "nn_mask": self.nn_mask.tolist(),
            "hr_times_s": self.hr_times_s.tolist(),
            "hr_bpm": [None if math.isnan(v) else v for v in self.hr_bpm.tolist()],
            "summary": self.summary.to_dict(),
        }


@dataclass(frozen=True)
class BeatMatch:
    """Detected beats matched one-to-one against reference beats within a tolerance."""

    true_positives: int
    false_positives: int
    false_negatives: int
    tolerance_s: float

    @property
    def sensitivity(self) -> float:
        """TP / (TP + FN)."""
        n = self.true_positives + self.false_negatives
        return self.true_positives / n if n else float("nan")

    @property
    def ppv(self) -> float:
        """TP / (TP + FP)."""
        n = self.true_positives + self.false_positives
        return self.true_positives / n if n else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "false_negatives": self.false_negatives,
            "tolerance_s": self.tolerance_s,
            "sensitivity": self.sensitivity,
            "ppv": self.ppv,
        }


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------


def _as_signal(x: ArrayLike, fs: float) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Validate; return the signal with short NaN gaps interpolated, and a mask of unusable
    samples (long NaN gaps and flat lines, set to the median so they cannot produce peaks)."""
    ok = isinstance(fs, numbers.Real) and not isinstance(fs, bool)
    if not (ok and math.isfinite(fs) and fs > 0):
        raise ValueError(f"fs must be a positive number, got {fs!r}")
    y = np.asarray(x, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError("signal must be one-dimensional")
    bad = ~np.isfinite(y)
    good = np.flatnonzero(~bad)
    if good.size < 2:
        return np.zeros_like(y), np.ones(y.shape, dtype=bool)
    if bad.any():
        y = y.copy()
        y[bad] = np.interp(np.flatnonzero(bad), good, y[good])
    # Runs of NaN longer than _MAX_INTERP_GAP_S are not bridged, and a perfectly constant run
    # longer than _FLATLINE_S is a lead-off / sensor-off flat line: both are unusable.
    unusable = _long_runs(bad, int(_MAX_INTERP_GAP_S * fs))
    flat = np.zeros(y.shape, dtype=bool)
    flat[1:] = np.diff(y) == 0
    flat[:-1] |= flat[1:]
    unusable |= _long_runs(flat, int(_FLATLINE_S * fs))
    if unusable.any():
        y = y.copy()
        y[unusable] = np.median(y[~unusable]) if (~unusable).any() else 0.0
    return y, unusable


def _long_runs(mask: NDArray[np.bool_], min_len: int) -> NDArray[np.bool_]:
    """The parts of ``mask`` that belong to runs of true values longer than ``min_len``."""
    if not mask.any():
        return np.zeros(mask.shape, dtype=bool)
    labels, n = ndimage.label(mask)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    sizes[0] = 0
    return (sizes > min_len)[labels]


def _template_correlation(
    filtered: NDArray[np.float64], beats: NDArray[np.int64], rr_samples: float, kind: SignalType
) -> float | None:
    """Median Pearson correlation of each beat's waveform with the median beat (a standard
    signal-quality index); None with fewer than 5 complete beats."""
    # Window: +-0.3 RR around an R peak (QRS plus part of P and T); +-0.5 RR around a pulse
    # peak (one whole pulse wave).
    half = int(rr_samples * (0.3 if kind is SignalType.ECG else 0.5))
    if half < 2:
        return None
    b = beats[(beats >= half) & (beats < filtered.size - half)]
    if b.size < 5:
        return None
    windows = filtered[b[:, None] + np.arange(-half, half)[None, :]]
    template = np.median(windows, axis=0)
    w = windows - windows.mean(axis=1, keepdims=True)
    t = template - template.mean()
    denom = np.linalg.norm(w, axis=1) * np.linalg.norm(t)
    corr = np.where(denom > 0, (w @ t) / np.where(denom > 0, denom, 1.0), 0.0)
    return float(np.median(corr))


def _clipped_fraction(y: NDArray[np.float64]) -> float:
    """Fraction of samples in flat runs (>= 3 samples) at the signal's extreme values: the
    amplifier or the export clipped the waveform there."""
    finite = y[np.isfinite(y)]
    if finite.size < 3:
        return 0.0
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        return 0.0  # a constant signal is a flat line, reported as such
    eps = 1e-9 * (hi - lo)
    at_rail = np.isfinite(y) & ((y >= hi - eps) | (y <= lo + eps))
    return float(_long_runs(at_rail, 2).mean())


def _moving_average(x: NDArray[np.float64], width: int) -> NDArray[np.float64]:
    # Centred (zero-lag): the recording is analysed offline, so the blocks of interest line up
    # with the waveform they mark and need no delay correction.
    return ndimage.uniform_filter1d(x, size=max(width, 1), mode="nearest")


def _detect(
    x: ArrayLike, fs: float, cfg: _DetectorConfig, rectify: bool
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.bool_]]:
    y, unusable = _as_signal(x, fs)
    if y.size < int(2 * cfg.w_beat_s * fs):
        return np.zeros(0, dtype=np.int64), y, unusable
    nyq = fs / 2.0
    hi = min(cfg.band_hz[1], 0.45 * fs)
    sos = signal.butter(cfg.order, [cfg.band_hz[0] / nyq, hi / nyq], btype="band", output="sos")
    filtered = signal.sosfiltfilt(sos, y)  # zero-phase: peak positions are not shifted
    filtered[unusable] = 0.0
    # ECG: square the band-passed signal (QRS of either polarity). PPG: keep only the positive
    # (systolic) half before squaring, as Elgendi prescribes.
    energy = np.square(filtered if rectify else np.clip(filtered, 0.0, None))
    ma_peak = _moving_average(energy, int(round(cfg.w_peak_s * fs)))
    ma_beat = _moving_average(energy, int(round(cfg.w_beat_s * fs)))
    # beta times the mean energy: a long-term offset. The mean is taken over usable samples with
    # the top 0.1 % clipped, so one large artefact does not raise the threshold for the record.
    usable = energy[~unusable]
    cap = np.quantile(usable, 0.999) if usable.size else 0.0
    offset = cfg.beta * float(np.mean(np.minimum(usable, cap))) if usable.size else 0.0
    blocks = ma_peak > ma_beat + offset
    # Blocks of interest: rising and falling edges of the boolean mask.
    edges = np.diff(blocks.astype(np.int8), prepend=0, append=0)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)  # exclusive
    keep = (ends - starts) >= int(round(cfg.w_peak_s * fs))  # THR2 = W1: reject narrow blocks
    starts, ends = starts[keep], ends[keep]
    if starts.size == 0:
        return np.zeros(0, dtype=np.int64), filtered, unusable
    # Peak of each block: ECG takes the largest |band-passed| sample, widened by refine_s so a
    # block that starts just after the R apex still finds it; PPG takes the largest value.
    pad = int(round(cfg.refine_s * fs))
    lo = np.maximum(starts - pad, 0)
    hi_idx = np.minimum(ends + pad, y.size)
    target = np.abs(filtered) if rectify else filtered
    peaks = np.array([a + int(np.argmax(target[a:b])) for a, b in zip(lo, hi_idx)], dtype=np.int64)
    peaks = _merge_refractory(peaks, target, int(round(cfg.refractory_s * fs)))
    peaks = peaks[~unusable[peaks]]
    return peaks, filtered, unusable


def _merge_refractory(
    peaks: NDArray[np.int64], amplitude: NDArray[np.float64], min_gap: int
) -> NDArray[np.int64]:
    """Keep the larger of any two peaks closer than ``min_gap`` samples (one beat each)."""
    if peaks.size < 2:
        return peaks
    peaks = np.unique(peaks)
    kept = [int(peaks[0])]
    for p in peaks[1:].tolist():
        if p - kept[-1] < min_gap:
            if amplitude[p] > amplitude[kept[-1]]:
                kept[-1] = p
        else:
            kept.append(p)
    return np.asarray(kept, dtype=np.int64)


def detect_r_peaks(ecg: ArrayLike, fs: float) -> NDArray[np.int64]:
    """Sample indices of R peaks in a single-lead ECG sampled at ``fs`` Hz (Elgendi 2013)."""
    return _detect(ecg, fs, _ECG, rectify=True)[0]


def detect_pulse_peaks(ppg: ArrayLike, fs: float) -> NDArray[np.int64]:
    """Sample indices of systolic peaks in a PPG sampled at ``fs`` Hz (Elgendi et al. 2013)."""
    return _detect(ppg, fs, _PPG, rectify=False)[0]


# --------------------------------------------------------------------------------------------
# RR artefact handling, HR and HRV
# --------------------------------------------------------------------------------------------


def _nn_mask(rr: NDArray[np.float64]) -> NDArray[np.bool_]:
    """True for RR intervals that are physiologically plausible and within _RR_LOCAL_TOL of the
    local median (a missed beat doubles an interval, a spurious one halves it, an ectopic beat
    shortens one and lengthens the next)."""
    if rr.size == 0:
        return np.zeros(0, dtype=bool)
    plausible = (rr >= _RR_MIN_S) & (rr <= _RR_MAX_S)
    ref = np.where(plausible, rr, np.nan)
    k = min(_RR_MEDIAN_BEATS, rr.size) | 1
    padded = np.pad(ref, k // 2, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, k)
    with np.errstate(all="ignore"):
        local = np.nanmedian(windows, axis=1) if np.isfinite(ref).any() else ref
    ok = plausible & (np.abs(rr - local) <= _RR_LOCAL_TOL * local)
    return np.asarray(ok & np.isfinite(local), dtype=bool)


def analyse(x: ArrayLike, fs: float, signal_type: SignalType | str) -> BeatAnalysis:
    """Detect beats in an ECG or PPG recording and derive the HR series, SDNN/RMSSD and a
    quality flag; never raises on a bad recording (quality says so), only on bad arguments."""
    kind = SignalType(signal_type)
    cfg, rectify = (_ECG, True) if kind is SignalType.ECG else (_PPG, False)
    y = np.asarray(x, dtype=np.float64)
    beats, filtered, unusable = _detect(y, fs, cfg, rectify)
    duration = y.size / fs
    rr = np.diff(beats) / fs
    nn = _nn_mask(rr)
    # Do not bridge a long NaN gap with an RR interval.
    if unusable.any() and rr.size:
        cum = np.concatenate([[0], np.cumsum(unusable)])
        nn &= (cum[beats[1:]] - cum[beats[:-1]]) == 0
    hr_times = beats[1:] / fs
    with np.errstate(divide="ignore"):
        hr = np.where(nn, 60.0 / np.where(rr > 0, rr, np.nan), np.nan)
    nn_rr = rr[nn]
    # RMSSD uses successive differences of adjacent NN intervals only (both intervals normal).
    pairs = nn[1:] & nn[:-1]
    diffs = np.diff(rr)[pairs] if rr.size > 1 else np.zeros(0)

    n_rr = int(rr.size)
    if nn_rr.size >= 2:
        med_rr = float(np.median(nn_rr))
        hr_med: float | None = 60.0 / med_rr
        hr_mean: float | None = 60.0 * nn_rr.size / float(nn_rr.sum())
        # Artefact = share of the recording not covered by NN intervals. Before the first and
        # after the last beat up to two median intervals are expected and not counted.
        lead, trail = beats[0] / fs, duration - beats[-1] / fs
        covered = float(nn_rr.sum()) + min(lead, 2 * med_rr) + min(trail, 2 * med_rr)
        artefact = min(1.0, max(0.0, 1.0 - covered / duration))
    else:
        med_rr, hr_med, hr_mean, artefact = 0.0, None, None, 1.0
    sdnn = rmssd = None
    if nn_rr.size >= _MIN_NN_FOR_HRV and diffs.size >= _MIN_NN_FOR_HRV - 1:
        sdnn = float(np.std(nn_rr, ddof=1) * 1000.0)
        rmssd = float(np.sqrt(np.mean(np.square(diffs))) * 1000.0)
    clipped = _clipped_fraction(y)
    lost = float(unusable.mean()) if unusable.size else 1.0
    corr = _template_correlation(filtered, beats, med_rr * fs, kind)

    # Each finding caps the quality; the worst cap wins and every finding is reported.
    findings: list[tuple[Quality, str]] = []
    if hr_med is None or beats.size < 3:
        findings.append((Quality.UNUSABLE, "too few beats detected"))
    if lost > 0.01:
        findings.append(
            (
                Quality.POOR if lost > 0.30 else Quality.FAIR,
                f"{lost:.0%} of the recording is missing or a flat line",
            )
        )
    if artefact > 0.10:
        cap = (
            Quality.UNUSABLE
            if artefact > 0.60
            else (Quality.POOR if artefact > 0.30 else Quality.FAIR)
        )
        findings.append((cap, f"{artefact:.0%} of the recording is not normal-to-normal beats"))
    if corr is not None and corr < _CORR_FAIR:
        # Real beats repeat their shape (median correlation ~0.99 on MIT-BIH 100 and BIDMC 01);
        # peaks picked out of noise correlate at ~0.45-0.70 only because they are peak-aligned.
        cap = (
            Quality.UNUSABLE
            if corr < _CORR_UNUSABLE
            else (Quality.POOR if corr < _CORR_POOR else Quality.FAIR)
        )
        findings.append((cap, f"inconsistent beat shape (template correlation {corr:.2f})"))
    if clipped > 0.01:
        findings.append(
            (
                Quality.POOR if clipped > 0.20 else Quality.GOOD,
                f"{clipped:.0%} of samples are clipped at the signal's limits",
            )
        )
    if hr_med is not None and duration > 0:
        per_min = 60.0 * beats.size / duration
        if abs(per_min - hr_med) > 0.2 * hr_med:
            # Beats/min over the whole recording disagrees with the NN-based HR: beats were
            # missed or are spurious somewhere the interval check could not see.
            findings.append((Quality.POOR, "beat count disagrees with the NN heart rate"))
    if hr_med is not None and sdnn is None:
        findings.append(
            (Quality.FAIR, f"fewer than {_MIN_NN_FOR_HRV} normal-to-normal intervals for HRV")
        )
    if sdnn is not None and duration < _HRV_RECORDING_S:
        findings.append((Quality.GOOD, "HRV from less than the 5 minutes the Task Force advises"))
    rank = list(Quality)
    quality = max((q for q, _ in findings), key=rank.index, default=Quality.GOOD)
    reasons = [why for _, why in findings]
    if quality is Quality.UNUSABLE:
        hr_med = hr_mean = sdnn = rmssd = None

    summary = HeartRateSummary(
        hr_bpm=hr_med,
        hr_mean_bpm=hr_mean,
        sdnn_ms=sdnn,
        rmssd_ms=rmssd,
        n_beats=int(beats.size),
        n_nn=int(nn.sum()),
        n_rr=n_rr,
        artefact_fraction=float(artefact),
        clipped_fraction=clipped,
        template_correlation=corr,
        duration_s=float(duration),
        quality=quality,
        reasons=tuple(reasons),
    )
    return BeatAnalysis(kind, float(fs), beats, rr, nn, hr_times, hr, summary)


def analyse_ecg(ecg: ArrayLike, fs: float) -> BeatAnalysis:
    """``analyse`` for a single-lead ECG."""
    return analyse(ecg, fs, SignalType.ECG)


def analyse_ppg(ppg: ArrayLike, fs: float) -> BeatAnalysis:
    """``analyse`` for a photoplethysmogram."""
    return analyse(ppg, fs, SignalType.PPG)


def windowed_hr(
    beat_times_s: ArrayLike, window_s: float, duration_s: float, nn_mask: ArrayLike | None = None
) -> NDArray[np.float64]:
    """Mean HR (60 / mean RR) per consecutive ``window_s`` window over ``duration_s``, using the
    RR intervals that end in each window (optionally only those in ``nn_mask``); NaN if none."""
    t = np.asarray(beat_times_s, dtype=np.float64)
    n_win = int(duration_s // window_s)
    out = np.full(n_win, np.nan)
    if t.size < 2 or n_win == 0:
        return out
    rr = np.diff(t)
    keep = np.ones(rr.size, bool) if nn_mask is None else np.asarray(nn_mask, dtype=bool)
    idx = (t[1:] // window_s).astype(np.int64)
    keep &= idx < n_win
    sums = np.bincount(idx[keep], weights=rr[keep], minlength=n_win)[:n_win]
    counts = np.bincount(idx[keep], minlength=n_win)[:n_win]
    has = counts > 0
    out[has] = 60.0 * counts[has] / sums[has]
    return out


def match_beats(
    detected: ArrayLike, reference: ArrayLike, fs: float, tolerance_s: float = 0.150
) -> BeatMatch:
    """Match detected to reference beat sample indices one-to-one, nearest first, within
    ``tolerance_s`` (ANSI/AAMI EC57 uses 150 ms); returns TP/FP/FN counts."""
    det = np.sort(np.asarray(detected, dtype=np.int64))
    ref = np.sort(np.asarray(reference, dtype=np.int64))
    tol = tolerance_s * fs
    if det.size == 0 or ref.size == 0:
        return BeatMatch(0, int(det.size), int(ref.size), tolerance_s)
    # Candidate pairs: each reference beat with its nearest detection on either side; accept
    # pairs in order of distance so each beat is used at most once.
    pos = np.searchsorted(det, ref)
    cand_d, cand_r, cand_dist = [], [], []
    for side in (pos - 1, pos):
        ok = (side >= 0) & (side < det.size)
        d_idx = side[ok]
        r_idx = np.flatnonzero(ok)
        dist = np.abs(det[d_idx] - ref[r_idx])
        within = dist <= tol
        cand_d.append(d_idx[within])
        cand_r.append(r_idx[within])
        cand_dist.append(dist[within])
    d_all = np.concatenate(cand_d)
    r_all = np.concatenate(cand_r)
    order = np.argsort(np.concatenate(cand_dist), kind="stable")
    used_d = np.zeros(det.size, bool)
    used_r = np.zeros(ref.size, bool)
    tp = 0
    for i in order.tolist():
        d, r = d_all[i], r_all[i]
        if not used_d[d] and not used_r[r]:
            used_d[d] = used_r[r] = True
            tp += 1
    return BeatMatch(tp, int(det.size - tp), int(ref.size - tp), tolerance_s)
