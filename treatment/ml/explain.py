"""Why the model recommends an arm for a patient, and the facts a clinician should know about it.

Explanation method: interventional Shapley values of the *benefit function*
f(x) = value(x, arm) - value(x, comparator) (e.g. the difference in survival at the horizon
between two arms, main model only). Players are the trial's covariates (a categorical's
indicator columns move together). The value of a coalition S is the mean of f over a background
sample of training patients with the covariates in S set to the patient's values:
v(S) = mean_b f(x_S, b_-S). Contributions therefore sum exactly to f(patient) - mean_b f(b)
("prediction minus baseline").

With up to `max_exact` covariates (GBSG2: 7, colon: 9) every coalition is evaluated: exact
Shapley values for that background. With more (ACTG175: 15) the values are estimated from
seeded random feature orderings, each paired with its reverse (antithetic sampling); each ordering's
marginal contributions telescope, so the sum property still holds exactly, and the estimate is
reproducible for a fixed seed. Shapley values describe how the model uses features, not causal
mechanisms, and correlated covariates share credit in ways that depend on the background.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from medai_ml.plain import to_plain
from treatment.ml.models import TreatmentModel
from treatment.ml.trials import encode_patients, validate_patient


@dataclass
class Contribution:
    """One covariate's push on the benefit (positive favours `arm` over `versus`)."""

    covariate: str
    label: str
    value: Any
    unit: str
    contribution: float


@dataclass
class Explanation:
    """Shapley decomposition of one patient's predicted benefit of `arm` over `versus`."""

    trial_key: str
    model_kind: str
    arm: int
    arm_label: str
    versus: int
    versus_label: str
    horizon: float | None
    quantity: str
    prediction: float  # f(patient)
    baseline: float  # mean of f over the background sample
    contributions: list[Contribution]  # sorted by |contribution|, largest first
    method: str
    n_background: int
    n_orderings: int | None  # None when exact

    @property
    def total(self) -> float:
        """Sum of contributions (equals prediction - baseline)."""
        return float(sum(c.contribution for c in self.contributions))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain types."""
        return to_plain({**asdict(self), "total": self.total})


def _benefit(model: TreatmentModel, X: np.ndarray, arm: int, versus: int, h: float | None):
    n = len(X)
    # One predict call for both arms (stacked rows) halves the per-call overhead of forests.
    v = model.main.value(np.vstack([X, X]), np.repeat([arm, versus], n), h)
    return v[:n] - v[n:]


def shapley_values(
    f: Any,
    x: np.ndarray,
    background: np.ndarray,
    groups: list[np.ndarray],
    max_exact: int = 10,
    n_orderings: int = 64,
    seed: int = 0,
) -> tuple[np.ndarray, float, float, int | None]:
    """Interventional Shapley values of vectorised f at x over column groups.

    Returns (values per group, f(x), mean f(background), orderings used or None if exact)."""
    d = len(groups)
    B = len(background)
    prediction = float(f(x[None, :])[0])
    baseline = float(np.mean(f(background)))

    def masks_to_rows(masks: np.ndarray) -> np.ndarray:
        # Each mask (over groups) x each background row -> one model input row.
        cols = np.zeros((len(masks), x.shape[0]), dtype=bool)
        for j, g in enumerate(groups):
            cols[:, g] = masks[:, [j]]
        rows = np.where(cols[:, None, :], x[None, None, :], background[None, :, :])
        return rows.reshape(-1, x.shape[0])

    if d <= max_exact:
        masks = ((np.arange(2**d)[:, None] >> np.arange(d)) & 1).astype(bool)
        v = f(masks_to_rows(masks)).reshape(2**d, B).mean(axis=1)
        size = masks.sum(axis=1)
        phi = np.zeros(d)
        for j in range(d):
            without = ~masks[:, j]
            s = size[without]
            weight = np.array(
                [math.factorial(k) * math.factorial(d - k - 1) for k in s]
            ) / math.factorial(d)
            with_j = np.flatnonzero(without) | (1 << j)
            phi[j] = np.sum(weight * (v[with_j] - v[without]))
        return phi, prediction, baseline, None

    rng = np.random.default_rng(seed)
    half = max(1, n_orderings // 2)
    orders = []
    for _ in range(half):
        p = rng.permutation(d)
        orders.extend([p, p[::-1]])
    orders = np.array(orders)
    masks = np.zeros((len(orders), d + 1, d), dtype=bool)
    for i, p in enumerate(orders):
        for k in range(1, d + 1):
            masks[i, k] = masks[i, k - 1]
            masks[i, k, p[k - 1]] = True
    v = f(masks_to_rows(masks.reshape(-1, d))).reshape(len(orders), d + 1, B).mean(axis=2)
    phi = np.zeros(d)
    for i, p in enumerate(orders):
        phi[p] += np.diff(v[i])
    return phi / len(orders), prediction, baseline, len(orders)


def explain_patient(
    model: TreatmentModel,
    patient: Mapping[str, Any],
    arm: int | None = None,
    versus: int | None = None,
    horizon: float | None = None,
    n_background: int | None = None,
    max_exact: int = 10,
    n_orderings: int = 32,
    seed: int = 0,
) -> Explanation:
    """Shapley contributions of each covariate to the benefit of `arm` over `versus`
    (default: the recommended arm and its comparator, as in effects.patient_effect)."""
    clean = validate_patient(model.trial_key, patient)
    defn = model.definition
    raw = pd.DataFrame([clean], columns=[c.name for c in defn.covariates])
    x = encode_patients(defn, raw).to_numpy(dtype=float)[0]
    h = model.resolve_horizon(horizon)
    if arm is None or versus is None:
        values = model.value_by_arm(x[None, :], h)[0]
        ref = model.reference_arm
        arm = int(np.argmax(values)) if arm is None else arm
        if versus is None:
            # Same comparator rule as the recommendation: the reference arm, or the best
            # other arm when the explained arm is the reference.
            others = [int(a) for a in np.argsort(-values, kind="stable") if a != arm]
            versus = ref if arm != ref else others[0]
    if arm == versus or not (0 <= arm < model.n_arms and 0 <= versus < model.n_arms):
        raise ValueError("arm and versus must be two different arm indices")
    background = model.background[: n_background or len(model.background)]
    names = list(defn.feature_names)
    groups = [np.array([names.index(c) for c in cov.encoded_columns()]) for cov in defn.covariates]
    phi, prediction, baseline, used = shapley_values(
        lambda rows: _benefit(model, rows, arm, versus, h),
        x,
        background,
        groups,
        max_exact,
        n_orderings,
        seed,
    )
    labels = model.arm_labels
    what = (
        f"difference in {defn.survival.label.lower()} at {h:g} {model.time_unit}"
        if model.task == "survival"
        else f"difference in {next(o.label for o in defn.outcomes if o.key == model.outcome)}"
    )
    contributions = sorted(
        (
            Contribution(cov.name, cov.label, clean[cov.name], cov.unit, float(p))
            for cov, p in zip(defn.covariates, phi)
        ),
        key=lambda c: -abs(c.contribution),
    )
    return Explanation(
        trial_key=model.trial_key,
        model_kind=model.kind,
        arm=arm,
        arm_label=labels[arm],
        versus=versus,
        versus_label=labels[versus],
        horizon=h,
        quantity=f"{what}: {labels[arm]} minus {labels[versus]}",
        prediction=prediction,
        baseline=baseline,
        contributions=contributions,
        method=(
            "exact interventional Shapley values over covariates"
            if used is None
            else f"interventional Shapley values estimated from {used} antithetic orderings"
        )
        + f", background of {len(background)} training patients",
        n_background=len(background),
        n_orderings=used,
    )


_KIND_LIMITS = {
    "cox": "Cox model: assumes proportional hazards within each arm; treatment-covariate "
    "interactions are linear in the (log-scaled) covariates.",
    "rsf": "Random survival forest: predictions flatten towards the edges of the training "
    "ranges; per-patient effects are noisy where few trial patients resemble the patient.",
    "svm": "Survival SVM: a rank-only model; its survival curves come from an in-sample "
    "Breslow recalibration of the risk score, so use C-indices, not curves, to judge it.",
    "rf": "Random forest: probabilities are averaged leaf frequencies and can be compressed "
    "towards the mean.",
}


def model_facts(model: TreatmentModel) -> dict[str, Any]:
    """JSON-ready 'model facts' card: data, population, metrics, method and known limits."""
    defn = model.definition
    t = model.training
    limits = [
        f"Applies to the trial population: {defn.population} Inputs outside the covariate "
        "ranges below are refused; patients unlike the trial's (other eras, co-treatments) "
        "may not be served well.",
        "Individual effects are model estimates from one trial without external validation; "
        "their intervals reflect resampling variability of the fit only, not model error.",
        "Heterogeneity of effects is far less certain than the trial's average effect: treat "
        "personalised differences as hypotheses to discuss, not as proof.",
        "Explanations (Shapley values) show how the model uses features, not causal mechanisms.",
        _KIND_LIMITS[model.kind],
        *defn.notes,
    ]
    if model.task == "survival":
        limits.append(
            f"No prediction beyond {t['max_time']:g} {model.time_unit} of follow-up; the last "
            f"event in training was at {t['max_event_time']:g} {model.time_unit}."
        )
    return to_plain(
        {
            "trial": {
                "key": defn.key,
                "title": defn.title,
                "citation": defn.citation,
                "licence": defn.licence,
                "population": defn.population,
            },
            "model": {
                "kind": model.kind,
                "outcome": model.outcome,
                "task": model.task,
                "arms": list(model.arm_labels),
                "reference_arm": model.arm_labels[model.reference_arm],
                "features": list(model.feature_names),
                "design_columns": model.design.column_names(),
                "n_bootstrap": len(model.bootstraps),
                "uncertainty": "normal-approximation bootstrap interval (point +/- z * SD of "
                "arm-stratified bootstrap refits)",
                "default_horizon": model.horizon,
                "time_unit": model.time_unit,
                "sha256": model.sha256,
                "config": asdict(model.config),
            },
            "training_data": {
                k: t[k]
                for k in ("n", "events", "arm_counts", "arm_probabilities", "max_time")
                if k in t
            },
            "covariate_ranges_seen": t["covariate_ranges"],
            "trial_distance": {
                k: t["trial_distance"][k]
                for k in ("method", "threshold", "percentile", "flag_rate_out_of_fold")
            }
            if t.get("trial_distance")
            else None,
            "metrics": model.metrics,
            "known_limits": limits,
        }
    )
