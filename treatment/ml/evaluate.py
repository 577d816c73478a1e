"""Held-out evaluation: discrimination, calibration, and the value of recommending arms.

Survival metrics (scikit-survival): Harrell's C, Uno's C (IPCW, truncated at the horizon),
integrated Brier score over the 5th-81st percentiles of held-out times (as in the
scikit-survival user guide), and calibration at the horizon (mean predicted event probability vs
Kaplan-Meier observed, by risk decile).

Policy value on held-out randomised data: V(pi) = mean_i 1[A_i = pi(X_i)] / p(A_i) * w_i * Y_i,
with p the randomisation probabilities estimated from the held-out arm frequencies and, for
survival, Y_i = 1[event-free at the horizon] and w_i the inverse probability of remaining
uncensored (Kaplan-Meier of the censoring times): patients censored before the horizon get
w = 0 and the others are up-weighted. Values are on the outcome scale (e.g. the proportion
event-free at the horizon if everyone followed the policy).
"""

from __future__ import annotations

import time as _time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import brier_score_loss, mean_squared_error, r2_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sksurv.metrics import (
    concordance_index_censored,
    concordance_index_ipcw,
    integrated_brier_score,
)
from sksurv.nonparametric import kaplan_meier_estimator

from medai_ml.plain import to_plain
from treatment.ml.effects import effects_from_encoded
from treatment.ml.models import ModelConfig, TreatmentModel, fit_treatment_model
from treatment.ml.trials import TrialData, get_trial, load_trial


@dataclass
class PolicyValue:
    """IPW estimate of a policy's mean outcome, with its standard error."""

    value: float
    se: float


@dataclass
class Evaluation:
    """Held-out performance of one model on one trial and outcome."""

    trial_key: str
    model_kind: str
    outcome: str
    n_train: int
    n_test: int
    seed: int
    horizon: float | None
    time_unit: str
    metrics: dict[str, float]
    calibration: list[dict[str, float]]
    policy: dict[str, dict[str, float]]
    best_single_arm: str
    model_vs_best_single_arm: dict[str, float]
    heterogeneity: dict[str, Any]
    qini: list[dict[str, Any]]
    fit_seconds: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain types."""
        return to_plain(asdict(self))


def split_trial(
    data: TrialData, test_size: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test row positions, stratified by arm x event (arm x outcome class)."""
    strata = data.arm * 2 + data.event.astype(int)
    idx = np.arange(len(data))
    train, test = train_test_split(idx, test_size=test_size, random_state=seed, stratify=strata)
    return np.sort(train), np.sort(test)


def _km(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return kaplan_meier_estimator(np.asarray(event, dtype=bool), np.asarray(time, dtype=float))


def _censoring_km(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Kaplan-Meier of the censoring times with events at a tied time counted first (a patient
    # censored on the day of an event was at risk for it): then S(t) G(t) = n(>t) / n exactly,
    # so IPCW means reproduce the Kaplan-Meier estimate.
    times, inverse = np.unique(time, return_inverse=True)
    d = np.bincount(inverse, weights=event.astype(float), minlength=len(times))
    c = np.bincount(inverse, weights=(~event).astype(float), minlength=len(times))
    at_risk = len(time) - np.r_[0, np.cumsum(d + c)[:-1]]
    denom = at_risk - d
    factor = np.where(denom > 0, 1 - c / np.where(denom > 0, denom, 1), 1.0)
    return times, np.cumprod(factor)


def _step(x: np.ndarray, y: np.ndarray, t: np.ndarray, left: bool = False) -> np.ndarray:
    # Step function value at t (or just before t with left=True); 1 before the first step.
    idx = np.searchsorted(x, t, side="left" if left else "right") - 1
    return np.where(idx < 0, 1.0, y[np.clip(idx, 0, None)])


def ipcw_outcome(
    time: np.ndarray, event: np.ndarray, horizon: float, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Event-free-at-horizon indicator and its inverse-probability-of-censoring weight.

    The censoring distribution is estimated within each group (pass the arm: follow-up can
    differ by arm), which makes each arm's weighted mean equal its Kaplan-Meier estimate.
    Patients censored before the horizon get weight 0."""
    time, event = np.asarray(time, dtype=float), np.asarray(event, dtype=bool)
    groups = np.zeros(len(time), dtype=int) if groups is None else np.asarray(groups)
    known = (time > horizon) | event
    at = np.minimum(time, horizon)
    g = np.ones(len(time))
    for grp in np.unique(groups):
        rows = groups == grp
        gx, gy = _censoring_km(time[rows], event[rows])
        # G just before an event time, G(h) for those followed beyond the horizon.
        g[rows] = np.where(
            time[rows] > horizon, _step(gx, gy, at[rows]), _step(gx, gy, at[rows], left=True)
        )
    weight = np.where(known & (g > 0), 1.0 / np.where(g > 0, g, 1.0), 0.0)
    return (time > horizon).astype(float), weight


def policy_value(
    arm: np.ndarray,
    outcome: np.ndarray,
    policy: np.ndarray,
    propensity: np.ndarray,
    weight: np.ndarray | None = None,
) -> PolicyValue:
    """IPW value of a policy on randomised data: mean of 1[A=pi]/p(A) * w * Y, and its SE."""
    terms = _policy_terms(arm, outcome, policy, propensity, weight)
    se = float(terms.std(ddof=1) / np.sqrt(len(terms))) if len(terms) > 1 else float("nan")
    return PolicyValue(float(terms.mean()), se)


def _policy_terms(
    arm: np.ndarray,
    outcome: np.ndarray,
    policy: np.ndarray,
    propensity: np.ndarray,
    weight: np.ndarray | None,
) -> np.ndarray:
    arm = np.asarray(arm, dtype=int)
    propensity = np.asarray(propensity, dtype=float)
    w = np.ones(len(arm)) if weight is None else np.asarray(weight, dtype=float)
    match = (arm == np.broadcast_to(np.asarray(policy), arm.shape)).astype(float)
    return match / propensity[arm] * w * np.asarray(outcome, dtype=float)


def qini_curve(
    predicted_benefit: np.ndarray,
    treated: np.ndarray,
    outcome: np.ndarray,
    weight: np.ndarray | None = None,
    n_points: int = 20,
) -> dict[str, Any]:
    """Qini and uplift curve points when patients are treated in order of predicted benefit.

    `treated` is 1 for the arm of interest, 0 for its comparator; weights (IPCW) make weighted
    means. Qini(k) = Y_t(k) - Y_c(k) W_t(k) / W_c(k) over the top k; the coefficient is the mean
    gap between the curve and the random-targeting line, divided by n."""
    order = np.argsort(-np.asarray(predicted_benefit), kind="stable")
    t = np.asarray(treated, dtype=float)[order]
    y = np.asarray(outcome, dtype=float)[order]
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=float)[order]
    wt, wc = np.cumsum(w * t), np.cumsum(w * (1 - t))
    yt, yc = np.cumsum(w * t * y), np.cumsum(w * (1 - t) * y)
    with np.errstate(divide="ignore", invalid="ignore"):
        qini = np.where(wc > 0, yt - yc * wt / wc, np.nan)
        uplift = np.where(
            (wt > 0) & (wc > 0), (yt / wt - yc / wc) * np.arange(1, len(y) + 1), np.nan
        )
    n = len(y)
    ks = np.unique(np.clip(np.round(np.linspace(0, 1, n_points + 1)[1:] * n).astype(int), 1, n))
    total = qini[-1]
    random_line = total * np.arange(1, n + 1) / n
    gap = np.nan_to_num(qini - random_line)
    return {
        "points": [
            {
                "fraction": k / n,
                "qini": float(qini[k - 1]),
                "random": float(random_line[k - 1]),
                "uplift": float(uplift[k - 1]),
            }
            for k in ks
        ],
        "qini_coefficient": float(gap.mean() / n),
        "n": n,
    }


def _calibration(
    pred_event: np.ndarray, time: np.ndarray, event: np.ndarray, horizon: float, groups: int = 10
) -> list[dict[str, float]]:
    # Risk deciles by rank; observed = 1 - Kaplan-Meier at the horizon within each group.
    order = np.argsort(pred_event, kind="stable")
    out = []
    for g, rows in enumerate(np.array_split(order, min(groups, len(order)))):
        x, s = _km(time[rows], event[rows])
        out.append(
            {
                "group": g + 1,
                "n": len(rows),
                "predicted": float(pred_event[rows].mean()),
                "observed": float(1 - _step(x, s, np.array([horizon]))[0]),
                "followed_to_horizon": bool(time[rows].max() >= horizon),
            }
        )
    return out


def heterogeneity(
    model: TreatmentModel,
    data: TrialData,
    covariate: str | None = None,
    horizon: float | None = None,
    bins: int = 5,
) -> dict[str, Any]:
    """Predicted benefit of each arm vs the reference against one covariate (points + bins)."""
    defn = data.definition
    cov = defn.covariate(covariate) if covariate else defn.covariates[0]
    eff = effects_from_encoded(model, data.X.to_numpy(dtype=float), horizon)
    raw = data.raw[cov.name]
    if cov.kind == "numeric":
        edges = np.unique(np.quantile(raw.to_numpy(dtype=float), np.linspace(0, 1, bins + 1)))
        group = np.clip(
            np.searchsorted(edges, raw.to_numpy(dtype=float), side="right") - 1, 0, len(edges) - 2
        )
        names = [f"{edges[i]:g}-{edges[i + 1]:g}" for i in range(len(edges) - 1)]
    else:
        levels = sorted(raw.astype(str).unique())
        group = np.array([levels.index(v) for v in raw.astype(str)])
        names = levels
    arms = [a for a in range(model.n_arms) if a != model.reference_arm]
    return {
        "covariate": cov.name,
        "label": cov.label,
        "unit": cov.unit,
        "versus": model.arm_labels[model.reference_arm],
        "points": {
            "x": raw.tolist(),
            **{model.arm_labels[a]: eff.difference[:, a].tolist() for a in arms},
        },
        "bins": [
            {
                "bin": names[g],
                "n": int((group == g).sum()),
                **{model.arm_labels[a]: float(eff.difference[group == g, a].mean()) for a in arms},
            }
            for g in range(len(names))
            if (group == g).any()
        ],
    }


def evaluate_model(
    model: TreatmentModel,
    train: TrialData,
    test: TrialData,
    horizon: float | None = None,
    heterogeneity_covariate: str | None = None,
    seed: int = 0,
) -> Evaluation:
    """Evaluate a model fitted on `train` against held-out `test` (same trial)."""
    defn = test.definition
    X = test.X.to_numpy(dtype=float)
    h = model.resolve_horizon(horizon)
    notes: list[str] = []
    eff = effects_from_encoded(model, X, h)
    if model.task == "survival":
        y, w = ipcw_outcome(test.time, test.event, h, test.arm)
        metrics, calibration = _survival_metrics(model, train, test, X, h, notes)
    else:
        y, w = test.outcomes[model.outcome], None
        metrics, calibration = _outcome_metrics(model, test, X)

    # Randomisation probabilities from the held-out arm frequencies (known design, estimated).
    propensity = np.bincount(test.arm, minlength=model.n_arms) / len(test)
    policies: dict[str, PolicyValue] = {
        "model": policy_value(test.arm, y, eff.recommended, propensity, w)
    }
    singles = [policy_value(test.arm, y, a, propensity, w) for a in range(model.n_arms)]
    for a, pv in enumerate(singles):
        policies[f"always {model.arm_labels[a]}"] = pv
    # Random arm: the exact expectation of a uniformly random assignment, not one draw.
    policies["random arm"] = PolicyValue(
        float(np.mean([p.value for p in singles])),
        float(np.sqrt(np.sum([p.se**2 for p in singles])) / model.n_arms),
    )
    # "Best single arm" is chosen on the training split, so the comparison is not optimistic.
    best = _best_single_arm(model, train, h)
    policies["best single arm"] = singles[best]
    diff = _policy_terms(test.arm, y, eff.recommended, propensity, w) - _policy_terms(
        test.arm, y, best, propensity, w
    )

    qini = []
    for a in range(model.n_arms):
        if a == model.reference_arm:
            continue
        rows = np.isin(test.arm, [a, model.reference_arm])
        q = qini_curve(
            eff.difference[rows, a],
            (test.arm[rows] == a).astype(float),
            y[rows],
            None if w is None else w[rows],
        )
        qini.append(
            {"arm": model.arm_labels[a], "versus": model.arm_labels[model.reference_arm], **q}
        )
    return Evaluation(
        trial_key=defn.key,
        model_kind=model.kind,
        outcome=model.outcome,
        n_train=len(train),
        n_test=len(test),
        seed=seed,
        horizon=h,
        time_unit=model.time_unit,
        metrics=metrics,
        calibration=calibration,
        policy={k: asdict(v) for k, v in policies.items()},
        best_single_arm=model.arm_labels[best],
        model_vs_best_single_arm={
            "difference": float(diff.mean()),
            "se": float(diff.std(ddof=1) / np.sqrt(len(diff))),
        },
        heterogeneity=heterogeneity(model, test, heterogeneity_covariate, h),
        qini=qini,
        fit_seconds=float(model.training["fit_seconds_total"]),
        notes=notes,
    )


def _best_single_arm(model: TreatmentModel, train: TrialData, horizon: float | None) -> int:
    if model.task == "survival":
        y, w = ipcw_outcome(train.time, train.event, horizon, train.arm)
    else:
        y, w = train.outcomes[model.outcome], None
    p = np.bincount(train.arm, minlength=model.n_arms) / len(train)
    values = [policy_value(train.arm, y, a, p, w).value for a in range(model.n_arms)]
    return int(np.argmax(values))


def _survival_metrics(
    model: TreatmentModel,
    train: TrialData,
    test: TrialData,
    X: np.ndarray,
    h: float,
    notes: list[str],
) -> tuple[dict[str, float], list[dict[str, float]]]:
    y_train, y_test = train.structured_y(), test.structured_y()
    risk = model.risk(X, test.arm)
    harrell = concordance_index_censored(test.event, test.time, risk)[0]
    uno = concordance_index_ipcw(y_train, y_test, risk, tau=h)[0]
    # Brier times: 5th-81st percentiles of held-out times, inside the training follow-up.
    times = np.percentile(test.time, np.linspace(5, 81, 15))
    times = np.unique(times[(times < train.time.max()) & (times < test.time.max())])
    surv = model.main.survival(X, test.arm, times)
    ibs = integrated_brier_score(y_train, y_test, surv, times)
    s_h = model.main.survival(X, test.arm, np.array([h]))[:, 0]
    calibration = _calibration(1 - s_h, test.time, test.event, h)
    cal_err = float(
        np.average(
            [abs(c["predicted"] - c["observed"]) for c in calibration],
            weights=[c["n"] for c in calibration],
        )
    )
    if model.kind == "svm":
        notes.append(
            "Survival SVM: curves come from an in-sample Breslow recalibration of its "
            "risk score; C-indices are its native measure."
        )
    return (
        {
            "c_index_harrell": float(harrell),
            "c_index_uno": float(uno),
            "integrated_brier_score": float(ibs),
            "ibs_time_range": [float(times[0]), float(times[-1])],
            "calibration_error_at_horizon": cal_err,
        },
        calibration,
    )


def _outcome_metrics(
    model: TreatmentModel, test: TrialData, X: np.ndarray
) -> tuple[dict[str, float], list[dict[str, float]]]:
    y = test.outcomes[model.outcome]
    pred = model.main.value(X, test.arm, None)
    if model.task == "binary":
        order = np.argsort(pred, kind="stable")
        calibration = [
            {
                "group": g + 1,
                "n": len(r),
                "predicted": float(pred[r].mean()),
                "observed": float(y[r].mean()),
            }
            for g, r in enumerate(np.array_split(order, 10))
        ]
        return (
            {
                "auc": float(roc_auc_score(y, pred)),
                "brier": float(brier_score_loss(y, pred)),
                "accuracy": float(((pred >= 0.5) == (y == 1)).mean()),
                "prevalence": float(y.mean()),
            },
            calibration,
        )
    return (
        {
            "rmse": float(np.sqrt(mean_squared_error(y, pred))),
            "r2": float(r2_score(y, pred)),
            "sd_outcome": float(y.std()),
        },
        [],
    )


def evaluate_trial(
    trial: str,
    config: ModelConfig | None = None,
    outcome: str = "survival",
    test_size: float = 0.3,
    seed: int = 0,
    horizon: float | None = None,
    heterogeneity_covariate: str | None = None,
) -> tuple[Evaluation, TreatmentModel]:
    """Split the trial (seeded), fit on the training part, evaluate on the held-out part."""
    data = load_trial(get_trial(trial))
    train_idx, test_idx = split_trial(data, test_size, seed)
    train, test = data.subset(train_idx), data.subset(test_idx)
    config = config or ModelConfig()
    started = _time.perf_counter()
    model = fit_treatment_model(train, config, outcome, horizon)
    fit_seconds = _time.perf_counter() - started
    evaluation = evaluate_model(model, train, test, horizon, heterogeneity_covariate, seed)
    evaluation.fit_seconds = fit_seconds
    model.metrics = {"held_out": evaluation.metrics, "n_test": len(test), "seed": seed}
    return evaluation, model
