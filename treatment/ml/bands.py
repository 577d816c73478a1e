"""Pointwise intervals around one patient's survival curves, from the bootstrap refits.

Same interval rule as effects.py (point +/- z * SD of the arm-stratified bootstrap refits), so
the bands on the curves and the intervals on the differences tell one story.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from medai_ml.plain import to_plain
from treatment.ml.models import TreatmentModel
from treatment.ml.trials import encode_patients, validate_patient


def survival_bands(
    model: TreatmentModel, patient: Mapping[str, Any], times: list[float], level: float = 0.95
) -> dict[str, Any]:
    """{"times", "low": [arm][t], "high": [arm][t]} clipped to [0, 1]; empty lists when the
    model is not a survival model or has fewer than two bootstrap refits."""
    if model.task != "survival" or len(model.bootstraps) < 2 or not times:
        return {"times": list(times), "low": [], "high": []}
    clean = validate_patient(model.trial_key, patient)
    raw = pd.DataFrame([clean], columns=[c.name for c in model.definition.covariates])
    X = encode_patients(model.trial_key, raw).to_numpy(dtype=float)
    grid = np.asarray(times, dtype=float)
    arms = np.arange(model.n_arms)
    stacked_X = np.tile(X, (model.n_arms, 1))
    point = model.main.survival(stacked_X, arms, grid)  # (arms, T)
    boot = np.stack([b.survival(stacked_X, arms, grid) for b in model.bootstraps])
    z = float(norm.ppf(0.5 + level / 2))
    se = boot.std(axis=0, ddof=1)
    low = np.clip(point - z * se, 0.0, 1.0)
    high = np.clip(point + z * se, 0.0, 1.0)
    return to_plain({"times": grid, "low": low, "high": high, "level": level})
