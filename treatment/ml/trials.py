"""Randomised trials as data: one declarative `TrialDefinition` per trial, one generic loader.

Adding a trial means adding a definition to `TRIALS`, not new code. The loader returns a
validated `TrialData`: encoded covariates, the arm index, the time-to-event outcome and any
extra binary/continuous outcomes.

Encoding (shared by training and by single-patient scoring, so both see the same columns):
numeric and binary covariates keep their name and raw value (binary as 0.0/1.0); a categorical
covariate with levels (L0, L1, ..., Lk) becomes k indicator columns named ``"name=Li"`` for
i >= 1, the first level being the reference that gets no column. Declared blanks are filled
with the training median (numeric) or the most frequent level (categorical/binary); every
other blank is an error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from medai_ml.plain import to_plain

CovariateKind = Literal["numeric", "categorical", "binary"]
OutcomeKind = Literal["binary", "continuous"]

REPO_ROOT = Path(__file__).resolve().parents[2]
CLINICAL_DIR = REPO_ROOT / "data" / "clinical"


class PatientValidationError(ValueError):
    """Invalid patient input; `errors` maps each offending field to a human message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


@dataclass(frozen=True)
class Covariate:
    """One baseline covariate: type, unit, plausible input range and human label."""

    name: str
    kind: CovariateKind
    label: str
    unit: str = ""
    # Inclusive [min, max] accepted for input (numeric only); chosen to match the population
    # the trial enrolled so that the model is never asked to extrapolate silently.
    range: tuple[float, float] | None = None
    # Raw values in the table; the first is the reference level (categorical only).
    levels: tuple[Any, ...] = ()
    level_labels: tuple[str, ...] = ()
    # Meaning of 0/1 for binary covariates, e.g. ("female", "male").
    binary_labels: tuple[str, str] = ("no", "yes")
    # Heavily skewed lab values: linear models use log1p of them (forests do not care).
    log_scale: bool = False
    # Whether blanks in the trial table may be filled (median / most frequent level).
    impute: bool = False

    def encoded_columns(self) -> tuple[str, ...]:
        """Names of the columns this covariate becomes in the encoded frame."""
        if self.kind == "categorical":
            return tuple(f"{self.name}={lvl}" for lvl in self.levels[1:])
        return (self.name,)


@dataclass(frozen=True)
class SurvivalOutcome:
    """The time-to-event outcome: time column, event column (value meaning event), unit."""

    time: str
    event: str
    time_unit: str
    label: str
    event_value: Any = 1


@dataclass(frozen=True)
class ExtraOutcome:
    """A binary or continuous outcome derived from the table by a pandas expression."""

    key: str
    kind: OutcomeKind
    label: str
    # Evaluated with DataFrame.eval on the raw table (a fixed string from this module only).
    expression: str
    unit: str = ""


@dataclass(frozen=True)
class TrialDefinition:
    """Everything MedAI needs to know about one randomised trial, declared once."""

    key: str
    title: str
    citation: str
    licence: str
    source: str  # "data/clinical/<file>" relative to the repo, or "lifelines:<file>"
    read_options: Mapping[str, Any]
    treatment: str
    arm_values: tuple[Any, ...]  # raw values of the treatment column, in arm-index order
    arm_labels: tuple[str, ...]
    covariates: tuple[Covariate, ...]
    survival: SurvivalOutcome
    population: str
    default_horizon: float
    reference_arm: int = 0
    outcomes: tuple[ExtraOutcome, ...] = ()
    row_filter: str | None = None  # DataFrame.query applied before anything else
    expected_rows: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n_arms(self) -> int:
        """Number of randomised arms."""
        return len(self.arm_labels)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Encoded covariate column names, in order."""
        return tuple(c for cov in self.covariates for c in cov.encoded_columns())

    def covariate(self, name: str) -> Covariate:
        """The covariate called `name` (KeyError if unknown)."""
        for cov in self.covariates:
            if cov.name == name:
                return cov
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description of the trial (no data)."""
        out = asdict(self)
        out["read_options"] = dict(self.read_options)
        out["feature_names"] = list(self.feature_names)
        return to_plain(out)


@dataclass
class TrialData:
    """A loaded trial: encoded covariates, arm index, survival outcome and extra outcomes."""

    definition: TrialDefinition
    X: pd.DataFrame  # encoded covariates (float), columns == definition.feature_names
    arm: np.ndarray  # int arm index 0..n_arms-1
    time: np.ndarray  # float, in definition.survival.time_unit
    event: np.ndarray  # bool, True = event observed
    outcomes: dict[str, np.ndarray]
    raw: pd.DataFrame  # the covariates as in the table (after imputation), for display

    def __len__(self) -> int:
        return len(self.arm)

    def subset(self, index: np.ndarray) -> TrialData:
        """Rows `index` (positions) of this trial as a new TrialData."""
        index = np.asarray(index)
        return TrialData(
            definition=self.definition,
            X=self.X.iloc[index].reset_index(drop=True),
            arm=self.arm[index],
            time=self.time[index],
            event=self.event[index],
            outcomes={k: v[index] for k, v in self.outcomes.items()},
            raw=self.raw.iloc[index].reset_index(drop=True),
        )

    def structured_y(self) -> np.ndarray:
        """scikit-survival's structured (event, time) array."""
        y = np.empty(len(self.time), dtype=[("event", bool), ("time", float)])
        y["event"] = self.event
        y["time"] = self.time
        return y


# --- the trials ----------------------------------------------------------------------------

GBSG2 = TrialDefinition(
    key="gbsg2",
    title="German Breast Cancer Study Group 2: hormonal therapy in node-positive breast cancer",
    citation=(
        "Schumacher M. et al., J Clin Oncol 12:2086-2093 (1994). Data: R packages pec / TH.data."
    ),
    licence="GPL (R package pec / TH.data)",
    source="data/clinical/gbsg2.csv",
    read_options={"sep": ";"},
    treatment="horTh",
    arm_values=("no", "yes"),
    arm_labels=("No hormonal therapy", "Tamoxifen"),
    covariates=(
        Covariate("age", "numeric", "Age", "years", (21, 80)),
        Covariate(
            "menostat",
            "categorical",
            "Menopausal status",
            levels=("Pre", "Post"),
            level_labels=("premenopausal", "postmenopausal"),
        ),
        Covariate("tsize", "numeric", "Tumour size", "mm", (3, 120)),
        Covariate(
            "tgrade",
            "categorical",
            "Tumour grade",
            levels=("I", "II", "III"),
            level_labels=("grade I", "grade II", "grade III"),
        ),
        Covariate("pnodes", "numeric", "Positive lymph nodes", "nodes", (1, 51), log_scale=True),
        Covariate(
            "progrec", "numeric", "Progesterone receptor", "fmol/l", (0, 2380), log_scale=True
        ),
        Covariate("estrec", "numeric", "Oestrogen receptor", "fmol/l", (0, 1144), log_scale=True),
    ),
    survival=SurvivalOutcome("time", "cens", "days", "Recurrence-free survival"),
    population=(
        "Women with primary node-positive breast cancer (GBSG2, Germany, 1984-1989), aged 21-80."
    ),
    default_horizon=5 * 365.25,
    expected_rows=686,
    notes=(
        "GBSG-2 is reported as a comprehensive cohort study: not every woman was randomised to "
        "hormonal therapy (246 yes vs 440 no), so horTh effects are not purely randomised and "
        "arm probabilities are estimated from arm frequencies; treat them as exploratory.",
    ),
)

ACTG175 = TrialDefinition(
    key="actg175",
    title="AIDS Clinical Trials Group 175: nucleoside regimens in HIV-1 (CD4 200-500)",
    citation=(
        "Hammer S.M. et al., N Engl J Med 335:1081-1090 (1996). Data: as shipped with the "
        "Python package lifelines (originally R package speff2trial)."
    ),
    licence="GPL-2 (R package speff2trial), redistributed by lifelines (MIT)",
    source="lifelines:ACTG175.csv",
    read_options={},
    treatment="arms",
    arm_values=(0, 1, 2, 3),
    arm_labels=("ZDV", "ZDV + ddI", "ZDV + ddC", "ddI"),
    covariates=(
        Covariate("age", "numeric", "Age", "years", (12, 70)),
        Covariate("wtkg", "numeric", "Weight", "kg", (31, 160)),
        Covariate("karnof", "numeric", "Karnofsky score", "points", (70, 100)),
        Covariate("cd40", "numeric", "CD4 count at baseline", "cells/mm3", (0, 1199)),
        Covariate("cd80", "numeric", "CD8 count at baseline", "cells/mm3", (40, 5011)),
        Covariate(
            "preanti",
            "numeric",
            "Prior antiretroviral therapy",
            "days",
            (0, 2851),
            log_scale=True,
        ),
        Covariate("hemo", "binary", "Haemophilia"),
        Covariate("homo", "binary", "Homosexual activity"),
        Covariate("drugs", "binary", "History of intravenous drug use"),
        Covariate("oprior", "binary", "Non-ZDV antiretroviral therapy before the trial"),
        Covariate("z30", "binary", "ZDV in the 30 days before the trial"),
        Covariate("race", "binary", "Race", binary_labels=("white", "non-white")),
        Covariate("gender", "binary", "Sex", binary_labels=("female", "male")),
        Covariate(
            "str2",
            "binary",
            "Antiretroviral history",
            binary_labels=("naive", "experienced"),
        ),
        Covariate("symptom", "binary", "Symptomatic HIV infection"),
    ),
    survival=SurvivalOutcome(
        "days",
        "cens",
        "days",
        "Time to >= 50% CD4 decline, AIDS or death",
    ),
    outcomes=(
        ExtraOutcome("cd4_kept", "binary", "CD4 at 20 weeks at or above baseline", "cd420 >= cd40"),
        ExtraOutcome(
            "cd4_change",
            "continuous",
            "Change in CD4 count at 20 weeks",
            "cd420 - cd40",
            "cells/mm3",
        ),
    ),
    population=(
        "HIV-1 infected adults and adolescents (12+) with CD4 counts 200-500 cells/mm3, "
        "United States, 1991-1992."
    ),
    default_horizon=900.0,
    expected_rows=2139,
    notes=(
        "Post-randomisation variables (offtrt, cd420, cd496, cd820, r) are outcomes, never "
        "covariates; zprior is constant and strat/treat are derived, so they are left out.",
    ),
)

COLON = TrialDefinition(
    key="colon",
    title="Adjuvant levamisole and fluorouracil in resected colon cancer (recurrence)",
    citation=(
        "Moertel C.G. et al., N Engl J Med 322:352-358 (1990). Data: R package survival (colon)."
    ),
    licence="LGPL (>= 2) (R package survival)",
    source="data/clinical/colon.csv",
    read_options={},
    treatment="rx",
    arm_values=("Obs", "Lev", "Lev+5FU"),
    arm_labels=("Observation", "Levamisole", "Levamisole + 5-FU"),
    covariates=(
        Covariate("age", "numeric", "Age", "years", (18, 85)),
        Covariate("sex", "binary", "Sex", binary_labels=("female", "male")),
        Covariate("obstruct", "binary", "Obstruction of colon by tumour"),
        Covariate("perfor", "binary", "Perforation of colon"),
        Covariate("adhere", "binary", "Adherence to nearby organs"),
        Covariate(
            "nodes",
            "numeric",
            "Positive lymph nodes",
            "nodes",
            (0, 33),
            log_scale=True,
            impute=True,
        ),
        Covariate(
            "differ",
            "categorical",
            "Tumour differentiation",
            levels=(2, 1, 3),
            level_labels=("moderate", "well", "poor"),
            impute=True,
        ),
        Covariate(
            "extent",
            "categorical",
            "Extent of local spread",
            levels=(3, 1, 2, 4),
            level_labels=("serosa", "submucosa", "muscle", "contiguous structures"),
        ),
        Covariate(
            "surg", "binary", "Time from surgery to registration", binary_labels=("short", "long")
        ),
    ),
    survival=SurvivalOutcome("time", "status", "days", "Recurrence-free time"),
    population="Patients with resected stage B/C colon cancer (North America, 1984-1987).",
    default_horizon=5 * 365.25,
    row_filter="etype == 1",
    expected_rows=929,
    notes=(
        "Blanks in nodes (18) and differ (23) are filled with the median / most frequent level.",
        "node4 is left out: it is nodes > 4, already carried by nodes.",
    ),
)

TRIALS: dict[str, TrialDefinition] = {t.key: t for t in (GBSG2, ACTG175, COLON)}


def get_trial(key: str | TrialDefinition) -> TrialDefinition:
    """The definition for `key` (a definition passes through); KeyError lists known keys."""
    if isinstance(key, TrialDefinition):
        return key
    try:
        return TRIALS[key]
    except KeyError:
        raise KeyError(f"unknown trial {key!r}; known: {sorted(TRIALS)}") from None


# --- loading -------------------------------------------------------------------------------


def _source_path(source: str) -> Path:
    if source.startswith("lifelines:"):
        # lifelines 0.30 ships ACTG175.csv but has no load_actg175(); read the file it ships.
        import lifelines.datasets

        return Path(lifelines.datasets.__file__).parent / source.split(":", 1)[1]
    return REPO_ROOT / source


def load_raw(trial: str | TrialDefinition) -> pd.DataFrame:
    """The trial's table as published, after the definition's row filter."""
    defn = get_trial(trial)
    frame = pd.read_csv(_source_path(defn.source), **dict(defn.read_options))
    if defn.row_filter:
        frame = frame.query(defn.row_filter)
    return frame.reset_index(drop=True)


def _same_level(value: Any, level: Any) -> bool:
    # Levels may be declared as ints while a table or a form gives 2.0 or "2".
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    return str(value).strip() == str(level)


def _encode(defn: TrialDefinition, raw: pd.DataFrame) -> pd.DataFrame:
    cols: dict[str, np.ndarray] = {}
    for cov in defn.covariates:
        values = raw[cov.name]
        if cov.kind == "categorical":
            for level in cov.levels[1:]:
                cols[f"{cov.name}={level}"] = np.array(
                    [_same_level(v, level) for v in values], dtype=float
                )
        else:
            cols[cov.name] = values.to_numpy(dtype=float)
    return pd.DataFrame(cols, columns=list(defn.feature_names))


def load_trial(trial: str | TrialDefinition) -> TrialData:
    """Load, check and encode a trial; ValueError on unknown arms, levels, blanks or size."""
    defn = get_trial(trial)
    frame = load_raw(defn)
    if defn.expected_rows is not None and len(frame) != defn.expected_rows:
        raise ValueError(f"{defn.key}: expected {defn.expected_rows} rows, got {len(frame)}")

    arm = np.full(len(frame), -1, dtype=int)
    for i, value in enumerate(defn.arm_values):
        arm[[_same_level(v, value) for v in frame[defn.treatment]]] = i
    if (arm < 0).any():
        bad = sorted(set(frame.loc[arm < 0, defn.treatment].astype(str)))
        raise ValueError(f"{defn.key}: unknown values in {defn.treatment}: {bad}")

    raw = frame[[c.name for c in defn.covariates]].copy()
    for cov in defn.covariates:
        missing = raw[cov.name].isna()
        if missing.any():
            if not cov.impute:
                raise ValueError(f"{defn.key}: {missing.sum()} blanks in {cov.name}")
            fill = raw[cov.name].median() if cov.kind == "numeric" else raw[cov.name].mode()[0]
            raw[cov.name] = raw[cov.name].fillna(fill)
        if cov.kind != "numeric" and pd.api.types.is_float_dtype(raw[cov.name]):
            # Blanks made the column float (2.0); levels and 0/1 codes are integers.
            if (raw[cov.name] % 1 == 0).all():
                raw[cov.name] = raw[cov.name].astype(int)
        if cov.kind == "categorical":
            unknown = {
                str(v) for v in raw[cov.name] if not any(_same_level(v, lv) for lv in cov.levels)
            }
            if unknown:
                raise ValueError(f"{defn.key}: unknown levels in {cov.name}: {sorted(unknown)}")
        elif cov.kind == "binary":
            if not raw[cov.name].isin([0, 1]).all():
                raise ValueError(f"{defn.key}: {cov.name} is not 0/1")

    s = defn.survival
    time = frame[s.time].to_numpy(dtype=float)
    event = np.array([_same_level(v, s.event_value) for v in frame[s.event]], dtype=bool)
    if not np.isfinite(time).all() or (time <= 0).any():
        raise ValueError(f"{defn.key}: {s.time} must be positive and finite")

    outcomes = {o.key: frame.eval(o.expression).to_numpy(dtype=float) for o in defn.outcomes}
    return TrialData(
        definition=defn,
        X=_encode(defn, raw),
        arm=arm,
        time=time,
        event=event,
        outcomes=outcomes,
        raw=raw,
    )


# --- one patient ---------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:g}"


def validate_patient(trial: str | TrialDefinition, patient: Mapping[str, Any]) -> dict[str, Any]:
    """Check one patient's covariates; return them cleaned or raise PatientValidationError."""
    defn = get_trial(trial)
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for cov in defn.covariates:
        value = patient.get(cov.name)
        if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
            errors[cov.name] = f"{cov.label} is required"
            continue
        if cov.kind == "categorical":
            match = [lv for lv in cov.levels if _same_level(value, lv)]
            if not match:
                allowed = ", ".join(str(lv) for lv in cov.levels)
                errors[cov.name] = f"{cov.label} must be one of {allowed}"
            else:
                clean[cov.name] = match[0]
            continue
        if isinstance(value, bool):
            number = float(value)
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                errors[cov.name] = f"{cov.label} must be a number"
                continue
        if not math.isfinite(number):
            errors[cov.name] = f"{cov.label} must be a finite number"
        elif cov.kind == "binary":
            if number not in (0.0, 1.0):
                errors[cov.name] = (
                    f"{cov.label} must be 0 ({cov.binary_labels[0]}) or 1 ({cov.binary_labels[1]})"
                )
            else:
                clean[cov.name] = int(number)
        else:
            lo, hi = cov.range if cov.range else (-math.inf, math.inf)
            if not lo <= number <= hi:
                unit = f" {cov.unit}" if cov.unit else ""
                errors[cov.name] = f"{cov.label} must be between {_fmt(lo)} and {_fmt(hi)}{unit}"
            else:
                clean[cov.name] = number
    unknown = sorted(set(patient) - {c.name for c in defn.covariates})
    for name in unknown:
        errors[name] = f"{name} is not a covariate of {defn.key}"
    if errors:
        raise PatientValidationError(errors)
    return clean


def encode_patients(trial: str | TrialDefinition, patients: pd.DataFrame) -> pd.DataFrame:
    """Encode raw covariate rows (already valid) into the model's covariate columns."""
    return _encode(get_trial(trial), patients.reset_index(drop=True))
