"""Applicability domain of a fingerprint property predictor: how close is a molecule to what
the model was trained on?

The measure is the maximum Tanimoto similarity (Morgan bits, as the model sees them) of a
molecule to the predictor's training molecules. The threshold comes from the predictor's own
scaffold cross-validation: each held-out molecule's maximum similarity to the folds it was not
in, binned, against its cross-validated error (|y - p|: for a classifier the probability given
to the wrong class, for a regressor the absolute error).

Rule (documented on the predictor's facts): bins of width 0.05 are merged upwards until each
holds at least MIN_BIN molecules; the threshold is the upper edge of the most similar bin
whose mean error exceeds the overall cross-validated error by more than TOLERANCE (25 %).
Below it, the model does markedly worse than it advertises; at or above it, the advertised
cross-validated performance holds. If no bin is that bad, the threshold is the lowest
similarity seen in cross-validation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from rdkit import DataStructs

BIN_WIDTH = 0.05
MIN_BIN = 20
TOLERANCE = 0.25
# HIV has 41k molecules: the threshold's error-vs-similarity curve needs a sample, not all.
MAX_CV_QUERIES = 3000
RULE = (
    "threshold = upper edge of the most similar bin (width 0.05, at least 20 molecules) whose "
    "mean scaffold-cross-validated error exceeds the overall cross-validated error by more "
    "than 25 %"
)


def bitvects(bits: np.ndarray) -> list[DataStructs.ExplicitBitVect]:
    """RDKit bit vectors from a (n, n_bits) 0/1 matrix (packed or not: see unpack_bits)."""
    out = []
    n_bits = bits.shape[1]
    for row in bits:
        bv = DataStructs.ExplicitBitVect(n_bits)
        bv.SetBitsFromList(np.flatnonzero(row).tolist())
        out.append(bv)
    return out


def max_similarity(
    queries: Sequence[DataStructs.ExplicitBitVect], reference: list[DataStructs.ExplicitBitVect]
) -> np.ndarray:
    """Maximum Tanimoto similarity of each query to the reference set (0 if it is empty)."""
    if not reference:
        return np.zeros(len(queries))
    return np.array([max(DataStructs.BulkTanimotoSimilarity(q, reference)) for q in queries])


def cv_similarity(
    x: np.ndarray, folds: Sequence[tuple[np.ndarray, np.ndarray]], seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(row indices, max similarity of each to the training part of its fold) for a sample of
    at most MAX_CV_QUERIES held-out molecules."""
    rng = np.random.default_rng(seed)
    fps = bitvects(x)
    rows: list[np.ndarray] = []
    sims: list[np.ndarray] = []
    share = min(1.0, MAX_CV_QUERIES / max(1, sum(len(te) for _, te in folds)))
    for tr, te in folds:
        take = te if share >= 1 else rng.choice(te, max(1, int(len(te) * share)), replace=False)
        reference = [fps[i] for i in tr]
        rows.append(np.asarray(take))
        sims.append(max_similarity([fps[i] for i in take], reference))
    return np.concatenate(rows), np.concatenate(sims)


def choose_threshold(similarity: np.ndarray, error: np.ndarray) -> dict[str, Any]:
    """The threshold by RULE, the bins it was read from and the share of cross-validated
    molecules that fall outside it."""
    similarity = np.asarray(similarity, dtype=float)
    error = np.asarray(error, dtype=float)
    keep = np.isfinite(error)
    similarity, error = similarity[keep], error[keep]
    overall = float(error.mean()) if len(error) else float("nan")
    edges = np.round(np.arange(0, 1 + BIN_WIDTH / 2, BIN_WIDTH), 4)
    bins: list[dict[str, Any]] = []
    low = 0.0
    for high in edges[1:]:
        last = high >= 1.0
        inside = (similarity >= low) & ((similarity < high) if not last else (similarity <= high))
        if inside.sum() < MIN_BIN and not last:
            continue  # merge into the next bin up
        if inside.any():
            bins.append(
                {
                    "low": float(low),
                    "high": float(high),
                    "n": int(inside.sum()),
                    "mean_error": round(float(error[inside].mean()), 4),
                }
            )
        low = float(high)
    bad = [b for b in bins if b["mean_error"] > (1 + TOLERANCE) * overall]
    if bad:
        threshold = max(b["high"] for b in bad)
    else:
        threshold = float(similarity.min()) if len(similarity) else 0.0
    return {
        "threshold": round(float(threshold), 4),
        "overall_error": round(overall, 4),
        "bins": bins,
        "cv_outside_rate": round(float(np.mean(similarity < threshold)), 4)
        if len(similarity)
        else None,
        "cv_n": int(len(similarity)),
        "rule": RULE,
    }


def describe(max_sim: float | None, threshold: float | None) -> dict[str, Any]:
    """JSON-ready domain verdict of one prediction: status 'inside' | 'outside' | 'unknown',
    the numbers and the sentence shown next to the prediction."""
    if max_sim is None or threshold is None or not np.isfinite(max_sim):
        return {"status": "unknown", "text": "applicability domain unknown"}
    s, t = round(float(max_sim), 2), round(float(threshold), 2)
    if max_sim < threshold:
        text = f"outside the applicability domain (max similarity {s:.2f} < {t:.2f})"
        return {"status": "outside", "max_similarity": s, "threshold": t, "text": text}
    text = f"inside the applicability domain (max similarity {s:.2f} ≥ {t:.2f})"
    return {"status": "inside", "max_similarity": s, "threshold": t, "text": text}


def domain_text(info: Mapping[str, Any] | None) -> str:
    """The stored verdict's sentence; 'applicability domain unknown' when there is none."""
    return (info or {}).get("text") or "applicability domain unknown"
