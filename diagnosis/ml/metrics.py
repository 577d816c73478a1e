"""Classification metrics in plain numpy: AUC, ROC, confusion matrix, calibration, thresholds.

numpy only (no scikit-learn) so a worker image needs nothing beyond torch and numpy; the tests
cross-check these against hand-computed cases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from medai_ml.plain import to_plain

DEFAULT_BINS = 15  # Guo et al. 2017 ("On calibration of modern neural networks") use 15 bins.


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Return row-wise softmax(logits / temperature) as float64."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Binary ROC AUC (ties count half); NaN when only one class is present."""
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    if len(y) != len(s):
        raise ValueError(f"{len(y)} labels but {len(s)} scores")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    # Mann-Whitney U with average ranks, which is exactly the ROC area including ties.
    ranks = _average_ranks(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_auc(y_true: np.ndarray, probs: np.ndarray) -> float:
    """AUC for binary (of column 1) or macro one-vs-rest over classes with both outcomes present."""
    y = np.asarray(y_true).ravel()
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != len(y):
        raise ValueError(f"probs must be (N, K) with N={len(y)}, got {p.shape}")
    if p.shape[1] == 2:
        return roc_auc(y == 1, p[:, 1])
    aucs = [roc_auc(y == k, p[:, k]) for k in range(p.shape[1])]
    aucs = [a for a in aucs if not math.isnan(a)]
    return float(np.mean(aucs)) if aucs else math.nan


def roc_curve(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (fpr, tpr, thresholds) from (0, 0) to (1, 1); predict positive when score >= t."""
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    # One point per distinct score: the last index of each run of equal scores.
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    n_pos, n_neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    fpr = np.r_[0.0, fps / n_neg]
    tpr = np.r_[0.0, tps / n_pos]
    thresholds = np.r_[np.inf, s[last]]
    return fpr, tpr, thresholds


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Return counts C[true, predicted] as an int64 (K, K) array."""
    y = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if len(y) != len(p):
        raise ValueError(f"{len(y)} labels but {len(p)} predictions")
    if len(y) and (min(y.min(), p.min()) < 0 or max(y.max(), p.max()) >= num_classes):
        raise ValueError(f"labels and predictions must be in [0, {num_classes})")
    return np.bincount(y * num_classes + p, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


@dataclass(frozen=True)
class ReliabilityCurve:
    """Per-bin mean confidence, accuracy and count of top-label predictions (equal-width bins)."""

    bin_edges: list[float]
    confidence: list[float | None]
    accuracy: list[float | None]
    count: list[int]
    ece: float


def reliability_curve(
    probs: np.ndarray, y_true: np.ndarray, n_bins: int = DEFAULT_BINS
) -> ReliabilityCurve:
    """Bin top-label confidence into `n_bins` equal bins; ECE = sum_b (n_b/N) |acc_b - conf_b|."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true).ravel()
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Right-closed bins, so confidence 1.0 lands in the last bin and 1/K (the minimum) in the first.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    conf_out: list[float | None] = []
    acc_out: list[float | None] = []
    counts: list[int] = []
    ece = 0.0
    for b in range(n_bins):
        mask = index == b
        n = int(mask.sum())
        counts.append(n)
        if n == 0:
            conf_out.append(None)
            acc_out.append(None)
            continue
        c, a = float(confidence[mask].mean()), float(correct[mask].mean())
        conf_out.append(c)
        acc_out.append(a)
        ece += n / max(len(y), 1) * abs(a - c)
    return ReliabilityCurve(edges.tolist(), conf_out, acc_out, counts, float(ece))


def expected_calibration_error(
    probs: np.ndarray, y_true: np.ndarray, n_bins: int = DEFAULT_BINS
) -> float:
    """Top-label ECE with equal-width bins (see `reliability_curve`)."""
    return reliability_curve(probs, y_true, n_bins).ece


def negative_log_likelihood(
    logits: np.ndarray, y_true: np.ndarray, temperature: float = 1.0
) -> float:
    """Mean cross-entropy of softmax(logits / temperature) against integer labels."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    y = np.asarray(y_true, dtype=np.int64).ravel()
    return float(-log_p[np.arange(len(y)), y].mean())


def fit_temperature(logits: np.ndarray, y_true: np.ndarray) -> float:
    """Return T in [0.05, 20] minimising validation NLL of softmax(logits / T) (Guo et al. 2017)."""
    # NLL(log T) is unimodal in practice; a log grid then golden-section refine is deterministic
    # and needs no optimiser state.
    grid = np.linspace(math.log(0.05), math.log(20.0), 121)
    nll = [negative_log_likelihood(logits, y_true, math.exp(g)) for g in grid]
    i = int(np.argmin(nll))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa = negative_log_likelihood(logits, y_true, math.exp(a))
    fb = negative_log_likelihood(logits, y_true, math.exp(b))
    for _ in range(40):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = negative_log_likelihood(logits, y_true, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = negative_log_likelihood(logits, y_true, math.exp(b))
    return float(math.exp((lo + hi) / 2))


def youden_threshold(y_true: np.ndarray, score: np.ndarray) -> float:
    """Threshold on P(class 1) maximising sensitivity + specificity - 1 (Youden's J).

    Youden's J does not depend on prevalence, which matters when the population the model is used
    on has a different share of positives than the validation split. The threshold is placed
    midway between the two scores that bound the best operating point, and ties between equally
    good points go to the one closest to 0.5.
    """
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    if y.all() or not y.any():
        return 0.5
    values = np.unique(s)
    cuts = np.r_[values[0] - 1e-6, (values[:-1] + values[1:]) / 2, values[-1] + 1e-6]
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    # positives predicted at cut c: count of positive scores >= c, via sorted search.
    pos_sorted, neg_sorted = np.sort(s[y]), np.sort(s[~y])
    tpr = 1.0 - np.searchsorted(pos_sorted, cuts, side="left") / n_pos
    tnr = np.searchsorted(neg_sorted, cuts, side="left") / n_neg
    j = tpr + tnr - 1.0
    best = np.flatnonzero(np.isclose(j, j.max(), rtol=0, atol=1e-12))
    pick = best[np.argmin(np.abs(cuts[best] - 0.5))]
    return float(np.clip(cuts[pick], 0.0, 1.0))


def predict_labels(probs: np.ndarray, threshold: float | None) -> np.ndarray:
    """Binary: class 1 when P(class 1) >= threshold; otherwise (or threshold None) arg-max."""
    p = np.asarray(probs)
    if p.shape[1] == 2 and threshold is not None:
        return (p[:, 1] >= threshold).astype(np.int64)
    return p.argmax(axis=1).astype(np.int64)


@dataclass
class Evaluation:
    """Metrics of a classifier on one split; `to_dict()` is JSON-serialisable (NaN -> None)."""

    split: str
    num_samples: int
    class_names: list[str]
    auc: float
    accuracy: float
    threshold: float | None
    temperature: float
    sensitivity: float | None
    specificity: float | None
    per_class_recall: dict[str, float | None]
    confusion_matrix: list[list[int]]
    roc: dict[str, dict[str, list[float]]]
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float
    reliability_before: ReliabilityCurve
    reliability_after: ReliabilityCurve
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return nested plain dicts/lists/floats/ints/None, ready for json.dumps."""
        return to_plain(asdict(self))

    def summary(self) -> dict[str, float | None]:
        """Return the headline numbers only (for logs and metric cards)."""
        keys = ("auc", "accuracy", "sensitivity", "specificity", "ece_before", "ece_after")
        return {k: to_plain(getattr(self, k)) for k in keys}


def evaluate(
    logits: np.ndarray,
    y_true: np.ndarray,
    *,
    class_names: Sequence[str],
    temperature: float = 1.0,
    threshold: float | None = None,
    split: str = "test",
    n_bins: int = DEFAULT_BINS,
) -> Evaluation:
    """Compute every `Evaluation` metric from raw logits, before and after temperature scaling."""
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.int64).ravel()
    k = len(class_names)
    if logits.ndim != 2 or logits.shape != (len(y), k):
        raise ValueError(f"logits must be ({len(y)}, {k}), got {logits.shape}")
    raw = softmax(logits)
    cal = softmax(logits, temperature)
    pred = predict_labels(cal, threshold)
    cm = confusion_matrix(y, pred, k)
    support = cm.sum(axis=1)
    recall = {
        name: (float(cm[i, i] / support[i]) if support[i] else None)
        for i, name in enumerate(class_names)
    }
    sens = spec = None
    if k == 2:
        sens, spec = recall[class_names[1]], recall[class_names[0]]
    roc: dict[str, dict[str, list[float]]] = {}
    for i, name in enumerate(class_names):
        if k == 2 and i == 0:
            continue  # the class-0 curve of a binary task is the mirror image of class 1's
        fpr, tpr, thr = roc_curve(y == i, cal[:, i])
        roc[name] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": thr.tolist()}
    before = reliability_curve(raw, y, n_bins)
    after = reliability_curve(cal, y, n_bins)
    return Evaluation(
        split=split,
        num_samples=len(y),
        class_names=[str(c) for c in class_names],
        auc=macro_auc(y, cal),
        accuracy=float((pred == y).mean()) if len(y) else math.nan,
        threshold=None if threshold is None else float(threshold),
        temperature=float(temperature),
        sensitivity=sens,
        specificity=spec,
        per_class_recall=recall,
        confusion_matrix=cm.tolist(),
        roc=roc,
        nll_before=negative_log_likelihood(logits, y),
        nll_after=negative_log_likelihood(logits, y, temperature),
        ece_before=before.ece,
        ece_after=after.ece,
        reliability_before=before,
        reliability_after=after,
        extra={"accuracy_argmax": float((raw.argmax(axis=1) == y).mean()) if len(y) else None},
    )


def _average_ranks(values: np.ndarray) -> np.ndarray:
    # Equal values share the mean of their 1-based sorted positions.
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    starts = np.cumsum(counts) - counts
    return (starts + (counts + 1) / 2.0)[inverse.ravel()]
