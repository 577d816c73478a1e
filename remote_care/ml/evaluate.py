"""Metrics for risk scores: discrimination, calibration, and operating points at an alert rate.

``alert rate`` is the fraction of patients flagged. To compare scores fairly, every score is
judged at the *same* alert rate: its top ``round(rate * n)`` patients are flagged (ties at the
cut are broken by a seeded random order so no score gains from coarse values).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

__all__ = [
    "OperatingPoint",
    "ReliabilityBin",
    "ScoreReport",
    "alerts_at_rate",
    "auprc",
    "auroc",
    "bootstrap_ci",
    "brier",
    "expected_calibration_error",
    "operating_point",
    "paired_bootstrap_diff",
    "reliability_bins",
    "score_report",
]


def _arrays(y: Sequence[int] | np.ndarray, p: Sequence[float] | np.ndarray) -> tuple[Any, Any]:
    y_a = np.asarray(y, dtype=np.int64)
    p_a = np.asarray(p, dtype=np.float64)
    if y_a.shape != p_a.shape or y_a.ndim != 1:
        raise ValueError("labels and scores must be 1-D and the same length")
    if not np.isin(y_a, (0, 1)).all():
        raise ValueError("labels must be 0/1")
    return y_a, p_a


def auroc(y: Sequence[int] | np.ndarray, score: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve (NaN when only one class is present)."""
    y_a, s = _arrays(y, score)
    return float(roc_auc_score(y_a, s)) if 0 < y_a.sum() < len(y_a) else float("nan")


def auprc(y: Sequence[int] | np.ndarray, score: Sequence[float] | np.ndarray) -> float:
    """Average precision (step-wise area under the precision-recall curve)."""
    y_a, s = _arrays(y, score)
    return float(average_precision_score(y_a, s)) if y_a.sum() > 0 else float("nan")


def brier(y: Sequence[int] | np.ndarray, prob: Sequence[float] | np.ndarray) -> float:
    """Mean squared error of probabilities."""
    y_a, p = _arrays(y, prob)
    return float(np.mean((p - y_a) ** 2))


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of a reliability diagram: mean predicted vs observed event rate."""

    lo: float
    hi: float
    count: int
    mean_predicted: float
    observed_rate: float


def reliability_bins(
    y: Sequence[int] | np.ndarray, prob: Sequence[float] | np.ndarray, n_bins: int = 10
) -> list[ReliabilityBin]:
    """Equal-width probability bins over [0, 1]; empty bins are omitted."""
    y_a, p = _arrays(y, prob)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    out = []
    for b in range(n_bins):
        sel = idx == b
        if sel.any():
            out.append(
                ReliabilityBin(
                    float(edges[b]),
                    float(edges[b + 1]),
                    int(sel.sum()),
                    float(p[sel].mean()),
                    float(y_a[sel].mean()),
                )
            )
    return out


def expected_calibration_error(
    y: Sequence[int] | np.ndarray, prob: Sequence[float] | np.ndarray, n_bins: int = 10
) -> float:
    """ECE: count-weighted mean |predicted - observed| over equal-width bins."""
    bins = reliability_bins(y, prob, n_bins)
    n = sum(b.count for b in bins)
    return float(sum(b.count * abs(b.mean_predicted - b.observed_rate) for b in bins) / n)


@dataclass(frozen=True)
class OperatingPoint:
    """Confusion-matrix summary of a set of alerts."""

    alert_rate: float
    sensitivity: float
    specificity: float
    ppv: float
    n_alerts: int


def operating_point(
    y: Sequence[int] | np.ndarray, alerts: Sequence[bool] | np.ndarray
) -> OperatingPoint:
    """Sensitivity, specificity and PPV of boolean alerts."""
    y_a = np.asarray(y, dtype=bool)
    a = np.asarray(alerts, dtype=bool)
    tp = int((a & y_a).sum())
    fp = int((a & ~y_a).sum())
    pos, neg = int(y_a.sum()), int((~y_a).sum())
    return OperatingPoint(
        alert_rate=float(a.mean()),
        sensitivity=tp / pos if pos else float("nan"),
        specificity=(neg - fp) / neg if neg else float("nan"),
        ppv=tp / (tp + fp) if tp + fp else float("nan"),
        n_alerts=int(a.sum()),
    )


def alerts_at_rate(score: Sequence[float] | np.ndarray, rate: float, seed: int = 0) -> np.ndarray:
    """Flag exactly ``round(rate * n)`` highest scores (random tie-break at the cut)."""
    s = np.asarray(score, dtype=np.float64)
    k = int(round(rate * len(s)))
    tie = np.random.default_rng(seed).random(len(s))
    order = np.lexsort((tie, -s))
    alerts = np.zeros(len(s), dtype=bool)
    alerts[order[:k]] = True
    return alerts


def bootstrap_ci(
    y: Sequence[int] | np.ndarray,
    score: Sequence[float] | np.ndarray,
    metric: Any = auroc,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric`` over patients."""
    y_a, s = _arrays(y, score)
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        i = rng.integers(0, len(y_a), len(y_a))
        if 0 < y_a[i].sum() < len(i):
            vals.append(metric(y_a[i], s[i]))
    lo, hi = np.quantile(vals, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def paired_bootstrap_diff(
    y: Sequence[int] | np.ndarray,
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    metric: Any = auroc,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(metric(a) - metric(b), 95 % CI low, high) on the same resampled patients."""
    y_a, sa = _arrays(y, a)
    _, sb = _arrays(y, b)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        i = rng.integers(0, len(y_a), len(y_a))
        if 0 < y_a[i].sum() < len(i):
            diffs.append(metric(y_a[i], sa[i]) - metric(y_a[i], sb[i]))
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    return float(metric(y_a, sa) - metric(y_a, sb)), float(lo), float(hi)


@dataclass(frozen=True)
class ScoreReport:
    """Everything reported for one score on one set of patients. Calibration fields are None
    for scores that are not probabilities (NEWS2, SAPS-I)."""

    name: str
    n: int
    n_events: int
    auroc: float
    auroc_ci: tuple[float, float]
    auprc: float
    brier: float | None
    ece: float | None
    reliability: tuple[ReliabilityBin, ...]
    at_rate: Mapping[str, OperatingPoint]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = asdict(self)
        d["auroc_ci"] = list(self.auroc_ci)
        return d


def score_report(
    name: str,
    y: Sequence[int] | np.ndarray,
    score: Sequence[float] | np.ndarray,
    *,
    is_probability: bool,
    alert_rates: Mapping[str, float],
    n_boot: int = 1000,
) -> ScoreReport:
    """AUROC (+ bootstrap CI), AUPRC, Brier/ECE/reliability (probabilities only), and the
    operating point at each named alert rate."""
    y_a, s = _arrays(y, score)
    return ScoreReport(
        name=name,
        n=len(y_a),
        n_events=int(y_a.sum()),
        auroc=auroc(y_a, s),
        auroc_ci=bootstrap_ci(y_a, s, auroc, n_boot=n_boot),
        auprc=auprc(y_a, s),
        brier=brier(y_a, s) if is_probability else None,
        ece=expected_calibration_error(y_a, s) if is_probability else None,
        reliability=tuple(reliability_bins(y_a, s)) if is_probability else (),
        at_rate={k: operating_point(y_a, alerts_at_rate(s, r)) for k, r in alert_rates.items()},
    )
