"""From irregular events to the model's regular, masked input tensors.

A stay's events are put on hourly bins (hour ``h`` holds minutes ``[60h, 60h+60)``; the
48:00 observations that close a PhysioNet stay fall into the last bin). Each *channel* then gets
eight features per hour, all causal (hour ``h`` sees only minutes < 60(h+1)):

``last``      the last binned value carried forward (0 = the training mean before any value)
``mask``      1 when the channel was observed in this hour
``delta``     time since the channel was last observed, log-scaled (1.0 = never observed)
``min/max/mean/first``  running statistics of the values seen so far (0 before any)
``seen``      1 once the channel has been observed at all

Values are log-transformed for skewed labs and standardised with training-set statistics, then
clipped to +-6 SD. A channel that is never observed is simply all-masked, which is how one model
layout can score an ICU stay with 37 variables and a MedAI patient with vital signs only.

Two feature specs are defined: ``ALL`` (the 37 PhysioNet variables, ICU descriptors) and
``VITALS`` (the vital signs a MedAI remote device sends, with invasive and cuff pressures merged;
age and sex only), which is the one the product deploys.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from remote_care.ml.physionet import TIME_SERIES_VARIABLES, Stay

__all__ = [
    "ALL",
    "FEATURES_PER_CHANNEL",
    "SPECS",
    "VITALS",
    "VITALS_SOURCES",
    "Channel",
    "FeatureSpec",
    "Normaliser",
    "build_batch",
    "build_inputs",
    "fit_normaliser",
]

FEATURES_PER_CHANNEL = ("last", "mask", "delta", "min", "max", "mean", "first", "seen")
_CLIP = 6.0


@dataclass(frozen=True)
class Channel:
    """One input channel fed by one or more PhysioNet variables.

    ``agg`` combines several events in one hour ("mean", or "sum" for urine output);
    ``log`` applies log1p before standardising (right-skewed labs); an ``indicator`` channel is
    1 whenever observed (supplemental oxygen from MechVent or FiO2 above room air)."""

    name: str
    sources: tuple[str, ...]
    agg: str = "mean"
    log: bool = False
    indicator: bool = False


_SKEWED = {
    "ALP",
    "ALT",
    "AST",
    "BUN",
    "Bilirubin",
    "Creatinine",
    "Glucose",
    "Lactate",
    "TroponinI",
    "TroponinT",
    "Urine",
    "WBC",
    "Platelets",
    "PaO2",
}


@dataclass(frozen=True)
class FeatureSpec:
    """Which channels and static descriptors a model reads, over how many hours."""

    name: str
    channels: tuple[Channel, ...]
    static: tuple[str, ...]
    n_hours: int = 48

    @property
    def n_features(self) -> int:
        """Per-hour input width."""
        return len(self.channels) * len(FEATURES_PER_CHANNEL)

    @property
    def n_static(self) -> int:
        """Width of the static vector (see :func:`static_vector`)."""
        widths = {"Age": 2, "Gender": 2, "Height": 2, "Weight": 2, "ICUType": 4}
        return sum(widths[s] for s in self.static)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in the artifact)."""
        return {
            "name": self.name,
            "channels": [
                {
                    "name": c.name,
                    "sources": list(c.sources),
                    "agg": c.agg,
                    "log": c.log,
                    "indicator": c.indicator,
                }
                for c in self.channels
            ],
            "static": list(self.static),
            "n_hours": self.n_hours,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=d["name"],
            channels=tuple(
                Channel(c["name"], tuple(c["sources"]), c["agg"], c["log"], c["indicator"])
                for c in d["channels"]
            ),
            static=tuple(d["static"]),
            n_hours=int(d["n_hours"]),
        )

    def source_map(self) -> np.ndarray:
        """PhysioNet variable index -> channel index (-1 when this spec ignores it)."""
        m = np.full(len(TIME_SERIES_VARIABLES), -1, dtype=np.int64)
        for ci, c in enumerate(self.channels):
            for s in c.sources:
                m[TIME_SERIES_VARIABLES.index(s)] = ci
        return m


ALL = FeatureSpec(
    name="all",
    channels=tuple(
        Channel(v, (v,), agg="sum" if v == "Urine" else "mean", log=v in _SKEWED)
        for v in TIME_SERIES_VARIABLES
    ),
    # ICUType is listed in the challenge's documentation but absent from every file of this
    # copy of set A, so it is not used (static_vector still understands it).
    static=("Age", "Gender", "Height", "Weight"),
)

#: The vital signs a MedAI remote-care device sends (see physionet.VITALS_TO_PHYSIONET).
VITALS = FeatureSpec(
    name="vitals",
    channels=(
        Channel("heart_rate", ("HR",)),
        Channel("respiratory_rate", ("RespRate",)),
        Channel("spo2", ("SaO2",)),
        Channel("temperature", ("Temp",)),
        Channel("systolic_bp", ("NISysABP", "SysABP")),
        Channel("diastolic_bp", ("NIDiasABP", "DiasABP")),
        Channel("consciousness_gcs", ("GCS",)),
        Channel("on_oxygen", ("MechVent", "FiO2"), indicator=True),
    ),
    static=("Age", "Gender"),
)

SPECS: Mapping[str, FeatureSpec] = {"all": ALL, "vitals": VITALS}

#: PhysioNet variables a MedAI device can supply, for evaluating a full-variable model on
#: vitals alone.
VITALS_SOURCES: frozenset[str] = frozenset(s for c in VITALS.channels for s in c.sources)


@dataclass(frozen=True)
class Normaliser:
    """Per-channel mean/SD (after the channel's log transform) and static descriptor stats."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    static_mean: Mapping[str, float]
    static_std: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "mean": list(self.mean),
            "std": list(self.std),
            "static_mean": dict(self.static_mean),
            "static_std": dict(self.static_std),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Normaliser:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(d["mean"]), tuple(d["std"]), dict(d["static_mean"]), dict(d["static_std"]))


def _channel_events(stay: Stay, spec: FeatureSpec, smap: np.ndarray) -> tuple[np.ndarray, ...]:
    """(minutes, channel, raw value) of the events this spec reads, indicator values set to 1."""
    ch = smap[stay.var.astype(np.int64)] if len(stay.var) else np.zeros(0, dtype=np.int64)
    keep = ch >= 0
    t, c, v = stay.times[keep], ch[keep], stay.values[keep].astype(np.float64)
    ind = np.array([spec.channels[i].indicator for i in range(len(spec.channels))], dtype=bool)
    if ind.any() and len(c):
        is_ind = ind[c]
        fio2 = stay.var[keep] == TIME_SERIES_VARIABLES.index("FiO2")
        # FiO2 at room air (0.21) is not supplemental oxygen.
        drop = is_ind & fio2 & (v <= 0.21)
        t, c, v, is_ind = t[~drop], c[~drop], v[~drop], is_ind[~drop]
        v = np.where(is_ind, 1.0, v)
    return t, c, v


def _transform(spec: FeatureSpec, c: np.ndarray, v: np.ndarray) -> np.ndarray:
    logs = np.array([ch.log for ch in spec.channels], dtype=bool)
    return np.where(logs[c], np.log1p(np.maximum(v, 0.0)), v)


def _hourly(stay: Stay, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """(observed ``[T, C]`` bool, hourly value in the channel's transformed scale, unnormalised)."""
    T, C = spec.n_hours, len(spec.channels)
    t, c, raw = _channel_events(stay, spec, spec.source_map())
    hour = np.floor(t / 60.0).astype(np.int64)
    hour = np.where(t == T * 60, T - 1, hour)
    keep = (hour >= 0) & (hour < T)
    hour, c, raw = hour[keep], c[keep], raw[keep]
    counts = np.zeros((T, C))
    tsum = np.zeros((T, C))
    rsum = np.zeros((T, C))
    np.add.at(counts, (hour, c), 1.0)
    np.add.at(tsum, (hour, c), _transform(spec, c, raw))
    np.add.at(rsum, (hour, c), raw)
    binned = tsum / np.maximum(counts, 1.0)
    for ci, ch in enumerate(spec.channels):
        if ch.agg == "sum":  # e.g. urine: the hour's total output, not the mean of its entries
            binned[:, ci] = np.log1p(np.maximum(rsum[:, ci], 0.0)) if ch.log else rsum[:, ci]
    return counts > 0, binned


def fit_normaliser(stays: Sequence[Stay], spec: FeatureSpec) -> Normaliser:
    """Statistics from training stays only (hourly-binned values, as the model sees them)."""
    n = len(spec.channels)
    s1, s2, cnt = np.zeros(n), np.zeros(n), np.zeros(n)
    for stay in stays:
        observed, binned = _hourly(stay, spec)
        b = np.where(observed, binned, 0.0)
        s1 += b.sum(axis=0)
        s2 += (b * b).sum(axis=0)
        cnt += observed.sum(axis=0)
    mean = np.where(cnt > 0, s1 / np.maximum(cnt, 1), 0.0)
    var = np.where(cnt > 1, s2 / np.maximum(cnt, 1) - mean**2, 1.0)
    std = np.sqrt(np.maximum(var, 1e-6))
    # Indicator channels are 0/1 flags; keep them as they are.
    for i, ch in enumerate(spec.channels):
        if ch.indicator:
            mean[i], std[i] = 0.0, 1.0
    smean: dict[str, float] = {}
    sstd: dict[str, float] = {}
    for name in ("Age", "Height", "Weight"):
        vals = np.array([s.static[name] for s in stays], dtype=np.float64)
        vals = vals[~np.isnan(vals)]
        smean[name] = float(vals.mean()) if len(vals) else 0.0
        sstd[name] = float(vals.std()) if len(vals) > 1 else 1.0
    return Normaliser(tuple(map(float, mean)), tuple(map(float, std)), smean, sstd)


def static_vector(stay: Stay, spec: FeatureSpec, norm: Normaliser) -> np.ndarray:
    """Static descriptors: z-scored Age/Height/Weight each with an observed flag, Gender as
    [female, male] flags, ICUType one-hot (coronary care, cardiac surgery recovery, medical,
    surgical); missing values are zeros with their flag off."""
    out: list[float] = []
    for name in spec.static:
        v = stay.static.get(name, math.nan)
        ok = v is not None and not math.isnan(v)
        if name in ("Age", "Height", "Weight"):
            z = (v - norm.static_mean[name]) / max(norm.static_std[name], 1e-6) if ok else 0.0
            out += [float(np.clip(z, -_CLIP, _CLIP)), 1.0 if ok else 0.0]
        elif name == "Gender":
            out += [1.0 if ok and v == 0 else 0.0, 1.0 if ok and v == 1 else 0.0]
        elif name == "ICUType":
            out += [1.0 if ok and int(v) == k else 0.0 for k in (1, 2, 3, 4)]
        else:
            raise ValueError(f"unknown static descriptor {name!r}")
    return np.asarray(out, dtype=np.float32)


def build_inputs(stay: Stay, spec: FeatureSpec, norm: Normaliser) -> tuple[np.ndarray, np.ndarray]:
    """(hourly features ``[n_hours, n_features]``, static ``[n_static]``) for one stay; features
    are channel-major (channel c's eight features at ``8c .. 8c+7``)."""
    T, C = spec.n_hours, len(spec.channels)
    observed, binned = _hourly(stay, spec)
    mean, std = np.asarray(norm.mean), np.asarray(norm.std)
    binned = np.clip((binned - mean) / std, -_CLIP, _CLIP)
    binned = np.where(observed, binned, np.nan)

    idx = np.where(observed, np.arange(T)[:, None], -1)
    last_idx = np.maximum.accumulate(idx, axis=0)
    seen = last_idx >= 0
    last = np.where(seen, binned[np.maximum(last_idx, 0), np.arange(C)[None, :]], 0.0)
    delta_h = np.where(seen, np.arange(T)[:, None] - last_idx, T)
    delta = np.log1p(delta_h) / math.log1p(T)
    filled = np.where(observed, binned, np.nan)
    with np.errstate(invalid="ignore"):
        rmin = np.fmin.accumulate(filled, axis=0)
        rmax = np.fmax.accumulate(filled, axis=0)
    csum = np.cumsum(np.where(observed, binned, 0.0), axis=0)
    ccnt = np.cumsum(observed, axis=0)
    rmean = np.where(seen, csum / np.maximum(ccnt, 1), 0.0)
    first_idx = np.where(observed.any(axis=0), observed.argmax(axis=0), 0)
    first_val = binned[first_idx, np.arange(C)]
    first = np.where(seen, first_val[None, :], 0.0)
    feats = np.stack(
        [
            last,
            observed.astype(np.float64),
            delta,
            np.nan_to_num(rmin, nan=0.0),
            np.nan_to_num(rmax, nan=0.0),
            rmean,
            first,
            seen.astype(np.float64),
        ],
        axis=-1,
    )  # [T, C, 8]
    return feats.reshape(T, C * len(FEATURES_PER_CHANNEL)).astype(np.float32), static_vector(
        stay, spec, norm
    )


def build_batch(
    stays: Sequence[Stay], spec: FeatureSpec, norm: Normaliser
) -> tuple[np.ndarray, np.ndarray]:
    """Stacked :func:`build_inputs`: ``[N, n_hours, n_features]`` and ``[N, n_static]``."""
    xs, ss = zip(*(build_inputs(s, spec, norm) for s in stays)) if stays else ((), ())
    if not stays:
        return (
            np.zeros((0, spec.n_hours, spec.n_features), np.float32),
            np.zeros((0, spec.n_static), np.float32),
        )
    return np.stack(xs), np.stack(ss)
