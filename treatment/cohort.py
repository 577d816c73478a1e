"""Cohort analyses for researchers: effect heterogeneity and Qini curves of a trial model."""

from __future__ import annotations

from typing import Any

import numpy as np

from medai_ml.plain import finite_list, to_plain
from treatment.ml.effects import effects_from_encoded
from treatment.ml.evaluate import heterogeneity, ipcw_outcome, qini_curve, split_trial
from treatment.ml.models import TreatmentModel
from treatment.ml.trials import TrialData


def cohort_analysis(
    model: TreatmentModel,
    data: TrialData,
    covariate: str,
    horizon: float | None = None,
    seed: int = 0,
    test_size: float = 0.3,
) -> dict[str, Any]:
    """Per-patient predicted benefit (each arm vs the reference, with intervals when the model
    has bootstrap refits) against ``covariate`` over the whole trial, and the Qini curve of each
    contrast on the seeded held-out split used by the evaluation. ValueError on a horizon the
    model cannot answer; KeyError on an unknown covariate."""
    h = model.resolve_horizon(horizon)
    cov = data.definition.covariate(covariate)
    eff = effects_from_encoded(model, data.X.to_numpy(dtype=float), h)
    ref = model.reference_arm
    raw = data.raw[cov.name]
    x = raw.tolist() if cov.kind == "numeric" else raw.astype(str).tolist()
    contrasts = []
    for a in range(model.n_arms):
        if a == ref:
            continue
        low, high = eff.low[:, a], eff.high[:, a]
        has_interval = bool(np.isfinite(low).all() and np.isfinite(high).all())
        excludes = (low > 0) | (high < 0)
        contrasts.append(
            {
                "arm": a,
                "label": model.arm_labels[a],
                "versus": model.arm_labels[ref],
                "difference": eff.difference[:, a].tolist(),
                "low": finite_list(low),
                "high": finite_list(high),
                "has_interval": has_interval,
                "share_excluding_zero": float(excludes.mean()) if has_interval else None,
                "share_favouring": float((eff.difference[:, a] > 0).mean()),
                "mean_difference": float(eff.difference[:, a].mean()),
            }
        )
    _, test_idx = split_trial(data, test_size, seed)
    test = data.subset(test_idx)
    X_test = test.X.to_numpy(dtype=float)
    test_eff = effects_from_encoded(model, X_test, h)
    if model.task == "survival":
        y, w = ipcw_outcome(test.time, test.event, h, test.arm)
    else:
        y, w = test.outcomes[model.outcome], None
    qini = []
    for a in range(model.n_arms):
        if a == ref:
            continue
        rows = np.isin(test.arm, [a, ref])
        curve = qini_curve(
            test_eff.difference[rows, a],
            (test.arm[rows] == a).astype(float),
            y[rows],
            None if w is None else w[rows],
        )
        qini.append({"arm": model.arm_labels[a], "versus": model.arm_labels[ref], **curve})
    return to_plain(
        {
            "trial": data.definition.key,
            "covariate": cov.name,
            "covariate_label": cov.label,
            "covariate_unit": cov.unit,
            "covariate_kind": cov.kind,
            "horizon": h,
            "time_unit": model.time_unit,
            "outcome": model.outcome,
            "level": eff.level,
            "n": len(data),
            "n_test": len(test),
            "seed": seed,
            "arm_labels": list(model.arm_labels),
            "x": x,
            "recommended": eff.recommended.tolist(),
            "contrasts": contrasts,
            "bins": heterogeneity(model, data, cov.name, h)["bins"],
            "qini": qini,
        }
    )
