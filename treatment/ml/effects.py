"""Personalised treatment effects: each arm's prediction for a patient, differences with
uncertainty, a recommended arm and a plain-language statement.

The effect of arm a for a patient is the difference in the model's higher-is-better value
(survival at the horizon, or probability / mean of an extra outcome) between arm a and a
comparator, with the treatment input set to each arm in turn.

Uncertainty: the bundle carries B bootstrap refits made at training time (arm-stratified
resamples, fixed seeds), so scoring is fast and identical for a fixed bundle. The interval is
the normal-approximation bootstrap interval, point +/- z * SD of the B bootstrap differences:
with B = 30-50, the SD is well estimated while 2.5 / 97.5 % percentiles would be little more
than the sample min / max (Efron & Tibshirani 1993, ch. 13). The point estimate is the model
fitted on all data, so the interval always contains it. It reflects sampling variability of the
model fit, not model misspecification.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from medai_ml.plain import finite_or_none, to_plain
from treatment.ml.models import TreatmentModel
from treatment.ml.trials import (
    PatientValidationError,
    encode_patients,
    validate_patient,
)


@dataclass
class ArmPrediction:
    """One arm's prediction for the patient (survival models add event probability, curve)."""

    arm: int
    label: str
    value: float  # survival at horizon, P(good outcome) or expected outcome
    event_probability: float | None
    curve: list[float] | None


@dataclass
class ArmDifference:
    """Arm minus comparator on the value scale, with its bootstrap interval."""

    arm: int
    label: str
    versus: int
    versus_label: str
    difference: float
    low: float | None
    high: float | None

    @property
    def includes_no_difference(self) -> bool:
        """True when the interval contains 0 (or there is no interval)."""
        return self.low is None or self.high is None or self.low <= 0.0 <= self.high


@dataclass
class Recommendation:
    """The arm with the best predicted value, its benefit over a comparator, and a statement."""

    arm: int
    label: str
    comparator: int
    comparator_label: str
    benefit: float
    low: float | None
    high: float | None
    includes_no_difference: bool
    statement: str


@dataclass
class PatientEffect:
    """Everything the dashboard shows about one patient's options."""

    trial_key: str
    outcome: str
    model_kind: str
    model_sha256: str | None
    patient: dict[str, Any]
    horizon: float | None
    time_unit: str
    value_name: str
    level: float
    n_bootstrap: int
    curve_times: list[float] | None
    arms: list[ArmPrediction]
    differences: list[ArmDifference]  # every non-reference arm versus the reference arm
    recommendation: Recommendation

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain types."""
        out = asdict(self)
        for d, obj in zip(out["differences"], self.differences):
            d["includes_no_difference"] = obj.includes_no_difference
        return to_plain(out)


@dataclass
class BatchEffects:
    """Effects for many patients as arrays (rows = patients, columns = arms)."""

    trial_key: str
    arm_labels: tuple[str, ...]
    reference_arm: int
    horizon: float | None
    level: float
    value: np.ndarray  # (n, arms)
    difference: np.ndarray  # (n, arms) arm minus reference
    low: np.ndarray  # (n, arms); NaN without bootstraps
    high: np.ndarray
    recommended: np.ndarray  # (n,) arm index
    comparator: np.ndarray  # (n,)
    benefit: np.ndarray  # (n,) recommended minus comparator
    benefit_low: np.ndarray
    benefit_high: np.ndarray

    @property
    def includes_no_difference(self) -> np.ndarray:
        """Per patient: the recommended benefit's interval contains 0."""
        return ~((self.benefit_low > 0) | (self.benefit_high < 0))

    def to_frame(self) -> pd.DataFrame:
        """One row per patient: per-arm values, recommendation and benefit interval."""
        cols: dict[str, Any] = {}
        for a, label in enumerate(self.arm_labels):
            cols[f"value[{label}]"] = self.value[:, a]
            if a != self.reference_arm:
                cols[f"difference[{label}]"] = self.difference[:, a]
        cols["recommended"] = [self.arm_labels[a] for a in self.recommended]
        cols["comparator"] = [self.arm_labels[a] for a in self.comparator]
        cols["benefit"] = self.benefit
        cols["benefit_low"] = self.benefit_low
        cols["benefit_high"] = self.benefit_high
        cols["includes_no_difference"] = self.includes_no_difference
        return pd.DataFrame(cols)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: metadata plus a list of per-patient records."""
        return to_plain(
            {
                "trial_key": self.trial_key,
                "arm_labels": self.arm_labels,
                "reference_arm": self.reference_arm,
                "horizon": self.horizon,
                "level": self.level,
                "patients": self.to_frame().to_dict(orient="records"),
            }
        )


def _core(model: TreatmentModel, X: np.ndarray, horizon: float | None, level: float) -> dict:
    # Shared by single and batch scoring so both give identical numbers.
    if not 0 < level < 1:
        raise ValueError("level must be between 0 and 1")
    values = model.value_by_arm(X, horizon, members="all")  # (1+B, n, K)
    point, boot = values[0], values[1:]
    n, k = point.shape
    ref = model.reference_arm
    z = float(norm.ppf(0.5 + level / 2))

    def interval(diff_point: np.ndarray, diff_boot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(diff_boot) < 2:
            nan = np.full_like(diff_point, np.nan)
            return nan, nan
        se = diff_boot.std(axis=0, ddof=1)
        return diff_point - z * se, diff_point + z * se

    difference = point - point[:, [ref]]
    low, high = interval(difference, boot - boot[:, :, [ref]])
    # Best arm by point estimate; ties go to the lower index (the reference comes first).
    recommended = np.argmax(point, axis=1)
    masked = point.copy()
    masked[np.arange(n), recommended] = -np.inf
    comparator = np.where(recommended != ref, ref, np.argmax(masked, axis=1))
    rows = np.arange(n)
    benefit = point[rows, recommended] - point[rows, comparator]
    boot_benefit = boot[:, rows, recommended] - boot[:, rows, comparator]
    b_low, b_high = interval(benefit, boot_benefit)
    return {
        "value": point,
        "difference": difference,
        "low": low,
        "high": high,
        "recommended": recommended,
        "comparator": comparator,
        "benefit": benefit,
        "benefit_low": b_low,
        "benefit_high": b_high,
        "horizon": model.resolve_horizon(horizon),
        "k": k,
    }


def _rows(model: TreatmentModel, patients: pd.DataFrame | Sequence[Mapping[str, Any]]) -> tuple:
    records = patients.to_dict(orient="records") if isinstance(patients, pd.DataFrame) else patients
    clean, errors = [], {}
    for i, rec in enumerate(records):
        try:
            clean.append(validate_patient(model.trial_key, rec))
        except PatientValidationError as exc:
            errors.update({f"{i}.{k}": v for k, v in exc.errors.items()})
    if errors:
        raise PatientValidationError(errors)
    raw = pd.DataFrame(clean, columns=[c.name for c in model.definition.covariates])
    return clean, encode_patients(model.trial_key, raw).to_numpy(dtype=float)


def _value_name(model: TreatmentModel) -> str:
    defn = model.definition
    if model.task == "survival":
        return defn.survival.label
    return next(o.label for o in defn.outcomes if o.key == model.outcome)


def _when(model: TreatmentModel, horizon: float | None) -> str:
    if horizon is None:
        return ""
    if model.time_unit == "days":
        return f" at {horizon:.0f} days ({horizon / 365.25:.1f} years)"
    return f" at {horizon:g} {model.time_unit}"


def _amount(model: TreatmentModel, x: float, signed: bool = True) -> str:
    if model.task == "continuous":
        unit = next(o.unit for o in model.definition.outcomes if o.key == model.outcome)
        return f"{x:+.1f} {unit}".rstrip() if signed else f"{x:.1f} {unit}".rstrip()
    return f"{100 * x:+.1f} percentage points" if signed else f"{100 * x:.1f}%"


def _statement(
    model: TreatmentModel,
    rec: int,
    comp: int,
    values: np.ndarray,
    benefit: float,
    low: float,
    high: float,
    level: float,
    horizon: float | None,
) -> tuple[str, bool]:
    labels = model.arm_labels
    what = _value_name(model).lower() + _when(model, horizon)
    has_interval = math.isfinite(low) and math.isfinite(high)
    no_difference = not has_interval or low <= 0.0 <= high
    interval = (
        f"{level:.0%} interval {_amount(model, low)} to {_amount(model, high)}"
        if has_interval
        else "no interval: the model has no bootstrap refits"
    )
    numbers = (
        f"predicted {what}: {_amount(model, values[rec], False)} with {labels[rec]} vs "
        f"{_amount(model, values[comp], False)} with {labels[comp]} "
        f"({_amount(model, benefit)}; {interval})."
    )
    ref = model.reference_arm
    if no_difference:
        if rec != ref:
            head = (
                f"The interval includes no difference: the data do not show that {labels[rec]} "
                f"helps this patient compared with {labels[comp]}."
            )
        else:
            head = (
                f"The interval includes no difference: the data do not show that any "
                f"alternative helps this patient compared with {labels[ref]}; the best "
                f"alternative is {labels[comp]}."
            )
    elif rec != ref:
        head = f"{labels[rec]} is predicted to help this patient compared with {labels[comp]}."
    else:
        head = (
            f"{labels[ref]} is predicted to be better for this patient than the best "
            f"alternative, {labels[comp]}."
        )
    return f"{head} Model {numbers}", no_difference


def patient_effect(
    model: TreatmentModel,
    patient: Mapping[str, Any],
    horizon: float | None = None,
    level: float = 0.95,
    curve_points: int = 40,
) -> PatientEffect:
    """One patient's prediction under each arm, differences vs the reference with intervals,
    and the recommendation; raises PatientValidationError (a ValueError) naming bad fields."""
    clean = validate_patient(model.trial_key, patient)
    raw = pd.DataFrame([clean], columns=[c.name for c in model.definition.covariates])
    X = encode_patients(model.trial_key, raw).to_numpy(dtype=float)
    core = _core(model, X, horizon, level)
    h = core["horizon"]
    values = core["value"][0]
    curve_times = curves = None
    if model.task == "survival":
        curve_times = np.linspace(0.0, float(model.training["max_time"]), curve_points)
        curves = model.survival_by_arm(X, curve_times)[0]
    labels = model.arm_labels
    arms = [
        ArmPrediction(
            arm=a,
            label=labels[a],
            value=float(values[a]),
            event_probability=float(1 - values[a]) if model.task == "survival" else None,
            curve=curves[a].tolist() if curves is not None else None,
        )
        for a in range(model.n_arms)
    ]
    ref = model.reference_arm

    differences = [
        ArmDifference(
            arm=a,
            label=labels[a],
            versus=ref,
            versus_label=labels[ref],
            difference=float(core["difference"][0, a]),
            low=finite_or_none(core["low"][0, a]),
            high=finite_or_none(core["high"][0, a]),
        )
        for a in range(model.n_arms)
        if a != ref
    ]
    rec, comp = int(core["recommended"][0]), int(core["comparator"][0])
    benefit, low, high = (float(core[k][0]) for k in ("benefit", "benefit_low", "benefit_high"))
    statement, no_diff = _statement(model, rec, comp, values, benefit, low, high, level, h)
    return PatientEffect(
        trial_key=model.trial_key,
        outcome=model.outcome,
        model_kind=model.kind,
        model_sha256=model.sha256,
        patient=clean,
        horizon=h,
        time_unit=model.time_unit,
        value_name=_value_name(model),
        level=level,
        n_bootstrap=len(model.bootstraps),
        curve_times=curve_times.tolist() if curve_times is not None else None,
        arms=arms,
        differences=differences,
        recommendation=Recommendation(
            arm=rec,
            label=labels[rec],
            comparator=comp,
            comparator_label=labels[comp],
            benefit=benefit,
            low=finite_or_none(low),
            high=finite_or_none(high),
            includes_no_difference=no_diff,
            statement=statement,
        ),
    )


def batch_effects(
    model: TreatmentModel,
    patients: pd.DataFrame | Sequence[Mapping[str, Any]],
    horizon: float | None = None,
    level: float = 0.95,
) -> BatchEffects:
    """Effects for many patients (raw covariates, validated; errors keyed "row.field")."""
    _, X = _rows(model, patients)
    return effects_from_encoded(model, X, horizon, level)


def effects_from_encoded(
    model: TreatmentModel, X: np.ndarray, horizon: float | None = None, level: float = 0.95
) -> BatchEffects:
    """Effects for rows already encoded like TrialData.X (no range validation: trial data)."""
    core = _core(model, np.asarray(X, dtype=float), horizon, level)
    return BatchEffects(
        trial_key=model.trial_key,
        arm_labels=model.arm_labels,
        reference_arm=model.reference_arm,
        horizon=core["horizon"],
        level=level,
        **{
            k: core[k]
            for k in (
                "value",
                "difference",
                "low",
                "high",
                "recommended",
                "comparator",
                "benefit",
                "benefit_low",
                "benefit_high",
            )
        },
    )
