"""The recurrent deterioration-risk model, its calibrated ensemble, and its artifact file.

Network (``RiskGRU``): a GRU over hourly bins. Each hour's input is, per channel, the eight
features of :mod:`remote_care.ml.features` (last value, observation mask, time since last
observation, running min/max/mean/first, seen flag) plus a GRU-D-style *decayed* last value
(Che et al., "Recurrent neural networks for multivariate time series with missing values",
Sci Rep 2018): ``last * exp(-rate_c * delta)`` with a learned per-channel rate, which pulls a
stale value towards the training mean (0 after standardisation) the longer it goes unmeasured.
Static descriptors initialise the hidden state and join every hour's input. A linear head reads
the hidden state after every hour, so the risk is updated as each hour's observations arrive.
With ``pool`` the head also reads the running maximum of the hidden states over the hours so
far (causal max-pooling), so a deterioration earlier in the window is not forgotten when the
state later recovers.

``RiskModel`` is a seed ensemble (mean of logits) with Platt scaling fitted on the validation
split; its artifact is ``torch.save`` of plain types and tensors only, loadable with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medai_ml.plain import to_plain
from remote_care.ml.features import (
    FEATURES_PER_CHANNEL,
    FeatureSpec,
    Normaliser,
    build_batch,
    build_inputs,
)
from remote_care.ml.physionet import Stay, VitalsReading, stay_from_vitals

__all__ = [
    "ARTIFACT_FORMAT",
    "RiskGRU",
    "RiskModel",
    "RiskTrajectory",
    "artifact_bytes",
    "artifact_load_bytes",
    "load_artifact",
    "predict",
    "risk_from_vitals",
    "save_artifact",
]

ARTIFACT_FORMAT = "medai.remote_care.deterioration-gru"
ARTIFACT_VERSION = 1
_K = len(FEATURES_PER_CHANNEL)


class RiskGRU(nn.Module):
    """GRU over hourly feature vectors; returns one logit per hour ``[B, T]``."""

    def __init__(
        self,
        n_channels: int,
        n_static: int,
        hidden: int = 64,
        dropout: float = 0.3,
        skip: bool = False,
        pool: bool = False,
    ):
        super().__init__()
        self.n_channels = n_channels
        self.skip = skip
        self.pool = pool
        self.decay = nn.Parameter(torch.zeros(n_channels))
        width = n_channels * (_K + 1) + n_static
        self.inp = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.h0 = nn.Linear(n_static, hidden) if n_static else None
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        head_in = hidden * (2 if pool else 1) + (width if skip else n_static)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(head_in, 1))

    def forward(
        self, x: torch.Tensor, s: torch.Tensor, *, with_state: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``[B, T, C*8]``, ``s`` ``[B, S]`` -> logits ``[B, T]`` (and, ``with_state``,
        the last hour's hidden state ``[B, hidden]``, which training's auxiliary head reads)."""
        b, t, _ = x.shape
        xc = x.view(b, t, self.n_channels, _K)
        gamma = torch.exp(-nn.functional.softplus(self.decay) * xc[..., 2] * 8.0)
        decayed = xc[..., 0] * gamma
        s_rep = s.unsqueeze(1).expand(b, t, s.shape[1])
        feats = torch.cat([x, decayed, s_rep], dim=-1)
        z = self.inp(feats)
        h0 = torch.tanh(self.h0(s)).unsqueeze(0) if self.h0 is not None else None
        out, _ = self.gru(z, h0)
        # With ``skip`` the head also reads the hour's running statistics directly, so the
        # recurrent state only has to add what the summaries miss.
        side = feats if self.skip else s_rep
        parts = [out, side]
        if self.pool:
            parts.insert(1, torch.cummax(out, dim=1).values)
        logits = self.head(torch.cat(parts, dim=-1)).squeeze(-1)
        return (logits, out[:, -1]) if with_state else logits


@dataclass(frozen=True)
class RiskTrajectory:
    """Calibrated risk of in-hospital death after each hour: ``risk[h]`` uses observations up to
    the end of hour ``h`` (``hours[h] = h + 1``); ``observed[h]`` says whether any of the model's
    channels was measured in that hour."""

    hours: tuple[int, ...]
    risk: tuple[float, ...]
    observed: tuple[bool, ...]
    start: datetime | None = None

    @property
    def final(self) -> float:
        """Risk after the last hour."""
        return self.risk[-1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "start": self.start.isoformat() if self.start else None,
            "times": [t.isoformat() for t in self.times()] if self.start else None,
            "hours": list(self.hours),
            "risk": list(self.risk),
            "observed": list(self.observed),
        }

    def times(self) -> list[datetime]:
        """Wall-clock end of each hour (live patients only: needs ``start``)."""
        if self.start is None:
            raise ValueError("this trajectory has no start time")
        return [self.start + timedelta(hours=h) for h in self.hours]


@dataclass
class RiskModel:
    """A calibrated ensemble of :class:`RiskGRU` with the spec and normaliser it was trained
    with. ``platt`` = (a, b): probability = sigmoid(a * mean_logit + b)."""

    networks: list[RiskGRU]
    spec: FeatureSpec
    normaliser: Normaliser
    platt: tuple[float, float] = (1.0, 0.0)
    hidden: int = 64
    dropout: float = 0.3
    skip: bool = False
    pool: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    # Training ranges per vital channel and the minimum-data rule (ml/applicability.py);
    # None for artifacts trained before it was recorded (the fallback contract applies).
    input_contract: dict[str, Any] | None = None
    sha256: str | None = None

    def logits(self, x: np.ndarray, s: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Uncalibrated ensemble-mean logits ``[N, T]``."""
        out = np.zeros(x.shape[:2], dtype=np.float64)
        with torch.inference_mode():
            for net in self.networks:
                net.eval()
                for i in range(0, len(x), batch_size):
                    xb = torch.from_numpy(x[i : i + batch_size])
                    sb = torch.from_numpy(s[i : i + batch_size])
                    out[i : i + batch_size] += net(xb, sb).double().numpy()
        return out / max(len(self.networks), 1)

    def calibrate(self, logits: np.ndarray) -> np.ndarray:
        """Platt-scaled probabilities from ensemble logits."""
        a, b = self.platt
        return 1.0 / (1.0 + np.exp(-(a * logits + b)))

    def predict_proba(self, stays: Sequence[Stay]) -> np.ndarray:
        """Calibrated risk after the full window for each stay ``[N]``."""
        x, s = build_batch(stays, self.spec, self.normaliser)
        return self.calibrate(self.logits(x, s)[:, -1])

    def risk_trajectory(self, stay: Stay) -> RiskTrajectory:
        """Hour-by-hour calibrated risk for one stay (or a live patient's window)."""
        x, s = build_inputs(stay, self.spec, self.normaliser)
        p = self.calibrate(self.logits(x[None], s[None])[0])
        mask = x.reshape(x.shape[0], -1, _K)[:, :, 1].any(axis=1)
        return RiskTrajectory(
            hours=tuple(range(1, len(p) + 1)),
            risk=tuple(float(v) for v in p),
            observed=tuple(bool(m) for m in mask),
        )

    def to_payload(self) -> dict[str, Any]:
        """The plain dict stored in an artifact (tensors on CPU, no pickled classes)."""
        return {
            "format": ARTIFACT_FORMAT,
            "format_version": ARTIFACT_VERSION,
            "spec": self.spec.to_dict(),
            "normaliser": self.normaliser.to_dict(),
            "platt": [float(self.platt[0]), float(self.platt[1])],
            "hidden": int(self.hidden),
            "dropout": float(self.dropout),
            "skip": bool(self.skip),
            "pool": bool(self.pool),
            "metrics": to_plain(self.metrics),
            "config": to_plain(self.config),
            "input_contract": to_plain(self.input_contract),
            "state_dicts": [
                {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
                for net in self.networks
            ],
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> RiskModel:
        """Inverse of :meth:`to_payload`; raises ValueError for a foreign or newer file."""
        if payload.get("format") != ARTIFACT_FORMAT:
            raise ValueError(f"not a {ARTIFACT_FORMAT} artifact: {payload.get('format')!r}")
        if int(payload.get("format_version", -1)) > ARTIFACT_VERSION:
            raise ValueError(f"artifact format_version {payload['format_version']} is newer")
        spec = FeatureSpec.from_dict(payload["spec"])
        nets = []
        for sd in payload["state_dicts"]:
            net = RiskGRU(
                len(spec.channels),
                spec.n_static,
                int(payload["hidden"]),
                float(payload["dropout"]),
                bool(payload.get("skip", False)),
                bool(payload.get("pool", False)),
            )
            net.load_state_dict(sd)
            net.eval()
            nets.append(net)
        return cls(
            networks=nets,
            spec=spec,
            normaliser=Normaliser.from_dict(payload["normaliser"]),
            platt=(float(payload["platt"][0]), float(payload["platt"][1])),
            hidden=int(payload["hidden"]),
            dropout=float(payload["dropout"]),
            skip=bool(payload.get("skip", False)),
            pool=bool(payload.get("pool", False)),
            metrics=dict(payload.get("metrics", {})),
            config=dict(payload.get("config", {})),
            input_contract=payload.get("input_contract"),
        )


def artifact_bytes(model: RiskModel) -> bytes:
    """The artifact as bytes (what the model registry stores)."""
    buf = io.BytesIO()
    torch.save(model.to_payload(), buf)
    return buf.getvalue()


def artifact_load_bytes(data: bytes) -> RiskModel:
    """Load artifact bytes (``weights_only=True``: no code in the file runs)."""
    payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    model = RiskModel.from_payload(payload)
    model.sha256 = hashlib.sha256(data).hexdigest()
    return model


def save_artifact(model: RiskModel, path: str | Path) -> str:
    """Write the artifact atomically; returns its sha256 (also set on ``model.sha256``)."""
    data = artifact_bytes(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    model.sha256 = hashlib.sha256(data).hexdigest()
    return model.sha256


def load_artifact(path: str | Path) -> RiskModel:
    """Load an artifact written by :func:`save_artifact`."""
    return artifact_load_bytes(Path(path).read_bytes())


def predict(model: RiskModel | str | Path, stays: Sequence[Stay]) -> np.ndarray:
    """Batch scoring: calibrated final-hour risk per stay (accepts a model or artifact path)."""
    if not isinstance(model, RiskModel):
        model = load_artifact(model)
    return model.predict_proba(stays)


def risk_from_vitals(
    model: RiskModel,
    readings: Iterable[VitalsReading | Mapping[str, Any]],
    *,
    end: datetime | None = None,
    age: float | None = None,
    sex: str | None = None,
) -> RiskTrajectory:
    """Risk trajectory of a live MedAI patient, hour by hour up to ``end`` (default: the last
    reading). The model reads at most its window (48 h): the clock starts at the first reading,
    or ``end`` minus the window when the history is longer, as an ICU stay starts at admission.
    Readings after ``end`` are ignored. Raises ValueError when there is no reading."""
    rows = [r if isinstance(r, VitalsReading) else VitalsReading.from_mapping(r) for r in readings]
    if end is not None:
        rows = [r for r in rows if r.taken_at <= end]
    if not rows:
        raise ValueError("no vital signs to score")
    end = end or max(r.taken_at for r in rows)
    window = timedelta(hours=model.spec.n_hours)
    start = max(min(r.taken_at for r in rows), end - window)
    stay = stay_from_vitals(rows, start=start, age=age, sex=sex)
    traj = model.risk_trajectory(stay)
    # Hours after ``end`` hold no data yet: drop them so ``final`` is the current risk.
    n = min(int((end - start) / timedelta(hours=1)) + 1, model.spec.n_hours)
    return replace(
        traj,
        hours=traj.hours[:n],
        risk=traj.risk[:n],
        observed=traj.observed[:n],
        start=start,
    )
