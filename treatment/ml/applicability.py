"""Is this patient like the trial's patients? A multivariate distance to the trial population.

Per-covariate ranges let through patients whose *combination* of values no trial patient had
(a 25-year-old postmenopausal woman with 50 nodes and a 3 mm tumour). The check here is the
Mahalanobis distance on the encoded covariates (log1p of skewed ones, as the model sees them),
with a Ledoit-Wolf shrunk covariance so that one-hot columns and small trials still give a
well-conditioned inverse. The threshold comes from the trial's own distribution: the chosen
percentile of out-of-fold distances (each trial patient measured against a fit that never saw
them), so about (100 - percentile) % of patients like the trial's are flagged by design, and
the measured rate is stored beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.covariance import LedoitWolf

from treatment.ml.trials import TrialDefinition, encode_patients, get_trial, validate_patient

PERCENTILE = 99.0
N_FOLDS = 5


def _prepare(defn: TrialDefinition, X: np.ndarray) -> np.ndarray:
    # Same log1p of skewed covariates as the model's design: distances in the model's geometry.
    log_names = {c.name for c in defn.covariates if c.log_scale}
    cols = np.array([n in log_names for n in defn.feature_names])
    X = np.array(X, dtype=float, copy=True)
    X[:, cols] = np.log1p(np.clip(X[:, cols], 0, None))
    return X


def _fit(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = Z.mean(axis=0)
    scale = Z.std(axis=0)
    scale[scale == 0] = 1.0
    lw = LedoitWolf().fit((Z - mean) / scale)
    # Fold the standardisation into the precision so one (mean, precision) pair is stored.
    precision = lw.precision_ / np.outer(scale, scale)
    return mean, precision


def _distances(Z: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    d = Z - mean
    return np.sqrt(np.clip(np.einsum("ij,jk,ik->i", d, precision, d), 0, None))


def fit_trial_distance(
    defn: TrialDefinition, X: np.ndarray, percentile: float = PERCENTILE, seed: int = 0
) -> dict[str, Any]:
    """Mean, shrunk inverse covariance and threshold (percentile of out-of-fold distances) of
    the trial's encoded covariates X, with the measured flag rates on the trial itself."""
    Z = _prepare(defn, np.asarray(X, dtype=float))
    n = len(Z)
    folds = np.random.default_rng(seed).permutation(n) % N_FOLDS
    oof = np.empty(n)
    for k in range(N_FOLDS):
        held = folds == k
        mean_k, prec_k = _fit(Z[~held])
        oof[held] = _distances(Z[held], mean_k, prec_k)
    mean, precision = _fit(Z)
    threshold = float(np.percentile(oof, percentile))
    in_sample = _distances(Z, mean, precision)
    return {
        "method": "Mahalanobis distance on the encoded covariates (Ledoit-Wolf shrunk covariance)",
        "features": list(defn.feature_names),
        "mean": mean.tolist(),
        "precision": precision.tolist(),
        "threshold": threshold,
        "percentile": percentile,
        "n": n,
        "flag_rate_out_of_fold": float(np.mean(oof > threshold)),
        "flag_rate_training": float(np.mean(in_sample > threshold)),
        "median_distance": float(np.median(oof)),
    }


def trial_distance(
    trial: str | TrialDefinition, fitted: Mapping[str, Any] | None, patient: Mapping[str, Any]
) -> dict[str, Any]:
    """JSON-ready distance of one patient to the trial population: {'status': 'like'|'unlike'|
    'unknown', 'distance', 'threshold', 'share_of_trial_further', 'message'}.

    `fitted` None (a model trained before this check existed) gives status 'unknown'."""
    defn = get_trial(trial)
    if not fitted:
        return {
            "status": "unknown",
            "message": "This model was trained before the similarity-to-trial check existed; "
            "whether the patient resembles the trial's patients is unknown.",
        }
    clean = validate_patient(defn, patient)
    raw = pd.DataFrame([clean], columns=[c.name for c in defn.covariates])
    x = _prepare(defn, encode_patients(defn, raw).to_numpy(dtype=float))
    mean = np.asarray(fitted["mean"], dtype=float)
    precision = np.asarray(fitted["precision"], dtype=float)
    distance = float(_distances(x, mean, precision)[0])
    threshold = float(fitted["threshold"])
    unlike = distance > threshold
    pct = fitted["percentile"]
    if unlike:
        message = (
            f"Unlike the patients in this trial: distance {distance:.1f} to the trial "
            f"population is above {threshold:.1f}, the distance exceeded by only "
            f"{100 - pct:g} % of the trial's own patients. Each value may be within the trial's "
            "ranges, but this combination was rare or absent; the estimates below are "
            "extrapolations."
        )
    else:
        message = (
            f"Like the patients in this trial: distance {distance:.1f} to the trial population "
            f"(threshold {threshold:.1f}, the {pct:g}th percentile of the trial's own patients)."
        )
    return {
        "status": "unlike" if unlike else "like",
        "distance": round(distance, 3),
        "threshold": round(threshold, 3),
        "percentile": pct,
        "trial_flag_rate": fitted.get("flag_rate_out_of_fold"),
        "message": message,
    }
