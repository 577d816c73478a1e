"""Held-out metrics with bootstrap intervals, and the comparison of two model versions on them.

Every family's validation hook hands over per-item outputs on its task's locked held-out set;
this module turns them into a metric with a 95 % percentile-bootstrap interval and, for two
versions scored on the *same* items, a paired bootstrap of the difference (both versions are
re-scored on the same resampled items, so the item-to-item variation common to both cancels:
DeLong-like power without its AUROC-only algebra, and the same code serves the C-index and
RMSE). A generator's samples are not items of a shared set, so its comparison is unpaired
(each version's samples are resampled independently) and says so.

Pure numpy: no Django, no platform.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Targets = Mapping[str, np.ndarray]
MetricFn = Callable[[Targets, np.ndarray], float]

BOOTSTRAP_SAMPLES = 1000
LEVEL = 0.95


def _rank(values: np.ndarray) -> np.ndarray:
    """Average ranks (1-based), ties sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _binary_auroc(y: np.ndarray, s: np.ndarray) -> float:
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = _rank(s)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def auroc(targets: Targets, scores: np.ndarray) -> float:
    """AUROC of ``scores`` for ``targets["labels"]``: a 1-D score against 0/1 labels, or a
    (n, k) probability matrix against class indices (macro one-vs-rest over the classes
    present); NaN when only one class is present."""
    labels = np.asarray(targets["labels"], dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        return _binary_auroc((labels == 1).astype(np.int64), scores)
    if scores.shape[1] == 2:
        return _binary_auroc((labels == 1).astype(np.int64), scores[:, 1])
    per_class = [
        _binary_auroc((labels == k).astype(np.int64), scores[:, k])
        for k in range(scores.shape[1])
        if 0 < (labels == k).sum() < len(labels)
    ]
    return float(np.mean(per_class)) if per_class else float("nan")


def c_index(targets: Targets, scores: np.ndarray) -> float:
    """Harrell's concordance of a risk score (higher = earlier event) with censored times:
    comparable pairs are those where the earlier time is an observed event (a censored time
    tied with an event counts as later, as scikit-survival and lifelines count it); tied
    risks count one half. NaN when no pair is comparable."""
    time = np.asarray(targets["time"], dtype=np.float64)
    event = np.asarray(targets["event"], dtype=bool)
    risk = np.asarray(scores, dtype=np.float64)
    concordant = 0.0
    comparable = 0
    for i in np.flatnonzero(event):
        later = (time > time[i]) | ((time == time[i]) & ~event)
        n = int(later.sum())
        if n == 0:
            continue
        comparable += n
        concordant += float((risk[i] > risk[later]).sum()) + 0.5 * float(
            (risk[i] == risk[later]).sum()
        )
    return concordant / comparable if comparable else float("nan")


def rmse(targets: Targets, scores: np.ndarray) -> float:
    """Root mean squared error of predictions against ``targets["y"]`` (lower is better)."""
    y = np.asarray(targets["y"], dtype=np.float64)
    pred = np.asarray(scores, dtype=np.float64)
    return float(np.sqrt(np.mean((pred - y) ** 2))) if len(y) else float("nan")


def proportion(targets: Targets, scores: np.ndarray) -> float:
    """The mean of per-sample 0/1 outcomes (e.g. the share of generated strings that are
    valid molecules)."""
    values = np.asarray(scores, dtype=np.float64)
    return float(values.mean()) if len(values) else float("nan")


@dataclass(frozen=True)
class Metric:
    """A held-out metric: its function, its direction and how a reader names it."""

    name: str
    label: str
    fn: MetricFn
    higher_is_better: bool


METRICS: dict[str, Metric] = {
    "auroc": Metric("auroc", "AUROC", auroc, True),
    "c_index": Metric("c_index", "C-index (Harrell)", c_index, True),
    "rmse": Metric("rmse", "RMSE", rmse, False),
    "validity": Metric("validity", "valid molecules (share of samples)", proportion, True),
}


@dataclass(frozen=True)
class Estimate:
    """A metric on a held-out set with its percentile-bootstrap interval."""

    value: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class Difference:
    """``candidate - reference`` of a metric with its bootstrap interval; ``paired`` says
    whether both were resampled on the same items."""

    value: float
    low: float
    high: float
    paired: bool
    n_boot: int


def _subset(targets: Targets, index: np.ndarray) -> dict[str, np.ndarray]:
    return {key: np.asarray(values)[index] for key, values in targets.items()}


def _interval(values: list[float], level: float) -> tuple[float, float]:
    finite = np.asarray([v for v in values if np.isfinite(v)], dtype=np.float64)
    if len(finite) == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(low), float(high)


def estimate(
    metric: Metric,
    targets: Targets,
    scores: np.ndarray,
    *,
    n_boot: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> Estimate:
    """``metric`` on the whole set with a percentile-bootstrap interval over items (seeded,
    so a re-validation of the same outputs gives the same numbers)."""
    scores = np.asarray(scores)
    n = len(scores)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        index = rng.integers(0, n, n)
        values.append(metric.fn(_subset(targets, index), scores[index]))
    low, high = _interval(values, level)
    return Estimate(metric.fn(targets, scores), low, high, n)


def paired_difference(
    metric: Metric,
    targets: Targets,
    candidate: np.ndarray,
    reference: np.ndarray,
    *,
    n_boot: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> Difference:
    """``metric(candidate) - metric(reference)`` on the same items, each bootstrap replicate
    re-scoring both on the same resampled items. ValueError when the outputs are not for the
    same number of items."""
    candidate, reference = np.asarray(candidate), np.asarray(reference)
    if len(candidate) != len(reference):
        raise ValueError(
            f"paired comparison needs outputs for the same items ({len(candidate)} vs "
            f"{len(reference)})"
        )
    n = len(candidate)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        index = rng.integers(0, n, n)
        sub = _subset(targets, index)
        diffs.append(metric.fn(sub, candidate[index]) - metric.fn(sub, reference[index]))
    low, high = _interval(diffs, level)
    value = metric.fn(targets, candidate) - metric.fn(targets, reference)
    return Difference(value, low, high, True, n_boot)


def unpaired_difference(
    metric: Metric,
    candidate: tuple[Targets, np.ndarray],
    reference: tuple[Targets, np.ndarray],
    *,
    n_boot: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> Difference:
    """``metric(candidate) - metric(reference)`` for outputs on different items (e.g. two
    generators' own samples): each side is resampled independently."""
    (t_a, s_a), (t_b, s_b) = candidate, reference
    s_a, s_b = np.asarray(s_a), np.asarray(s_b)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        i = rng.integers(0, len(s_a), len(s_a))
        j = rng.integers(0, len(s_b), len(s_b))
        diffs.append(metric.fn(_subset(t_a, i), s_a[i]) - metric.fn(_subset(t_b, j), s_b[j]))
    low, high = _interval(diffs, level)
    return Difference(metric.fn(t_a, s_a) - metric.fn(t_b, s_b), low, high, False, n_boot)


def not_worse(difference: Difference, *, higher_is_better: bool) -> bool:
    """Whether the candidate is *not significantly worse* than the reference: the 95 %
    interval of the difference does not lie wholly on the worse side of zero."""
    if not np.isfinite(difference.low) or not np.isfinite(difference.high):
        return False
    return difference.high >= 0 if higher_is_better else difference.low <= 0


def as_arrays(payload: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Stored JSON lists back to arrays."""
    return {key: np.asarray(value) for key, value in payload.items()}
