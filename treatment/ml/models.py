"""Models with the treatment arm as an input feature, their bootstrap refits, and byte bundles.

Survival (time-to-event) models:
- ``cox``: Cox proportional hazards with a small ridge penalty (scikit-survival
  CoxPHSurvivalAnalysis), on covariates + arm indicators + arm x covariate interactions, because
  a Cox model with only a main treatment term gives every patient the same hazard ratio.
- ``rsf``: random survival forest on covariates + arm indicators (trees find interactions).
- ``svm``: FastSurvivalSVM, ranking objective, on the same design as Cox. It outputs a *risk
  score*, not a survival curve. Its curves here come from a Breslow-style recalibration: a
  one-variable Cox model on the (standardised) training score gives a scale and a baseline
  hazard, S(t|x) = S0(t) ** exp(b * score(x)). That calibration is fitted in-sample; rank-based
  metrics (C-index) are the SVM's honest measure.

Binary / continuous outcomes (e.g. ACTG175 CD4 at 20 weeks): ``svm`` (RBF SVC with Platt
probabilities from 5-fold calibration / SVR on the standardised target) and ``rf``
(RandomForestClassifier / RandomForestRegressor) on covariates + arm indicators.

Every model answers on one "value" scale where higher is better: survival probability at a
horizon, probability of a good binary outcome, or the expected continuous outcome. Effects,
explanations and policies are computed on that scale.
"""

from __future__ import annotations

import hashlib
import io
import time as _time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import joblib
import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR
from sksurv.ensemble import RandomSurvivalForest
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.svm import FastSurvivalSVM

from treatment.ml.applicability import fit_trial_distance
from treatment.ml.trials import TrialData, TrialDefinition, get_trial

FORMAT = "medai.treatment.effect-model"
FORMAT_VERSION = 1
SURVIVAL_KINDS = ("cox", "rsf", "svm")
OUTCOME_KINDS = ("svm", "rf")
Task = Literal["survival", "binary", "continuous"]


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of one model family; defaults are modest for a 2-core machine."""

    kind: str = "cox"
    cox_alpha: float = 1.0  # ridge on standardised features: small next to n log-likelihood terms
    svm_alpha: float = 1.0
    svm_max_iter: int = 100
    rsf_trees: int = 100
    rsf_bootstrap_trees: int = 40  # bootstrap members only feed the interval: fewer trees
    rsf_min_samples_leaf: int = 15
    rsf_max_features: str | float = "sqrt"
    rf_trees: int = 200
    rf_min_samples_leaf: int = 10
    svc_c: float = 1.0
    interactions: bool | None = None  # None: True for cox / survival svm, False for forests
    n_bootstrap: int = 30
    seed: int = 0
    n_jobs: int = 1

    def uses_interactions(self, task: Task) -> bool:
        """Whether the design adds arm x covariate interaction columns."""
        if self.interactions is not None:
            return self.interactions
        return task == "survival" and self.kind in ("cox", "svm")


class Design:
    """Model matrix: log1p of skewed covariates, standardised, then arm dummies and interactions."""

    def __init__(
        self, definition: TrialDefinition, interactions: bool, reference_arm: int = 0
    ) -> None:
        self.covariate_names = definition.feature_names
        log_names = {c.name for c in definition.covariates if c.log_scale}
        self.log_columns = np.array([n in log_names for n in self.covariate_names])
        self.n_arms = definition.n_arms
        self.reference_arm = reference_arm
        self.arm_labels = definition.arm_labels
        self.interactions = interactions
        self.scaler = StandardScaler()

    @property
    def other_arms(self) -> list[int]:
        """Arm indices that get an indicator column (all but the reference)."""
        return [a for a in range(self.n_arms) if a != self.reference_arm]

    def _prepare(self, X: np.ndarray) -> np.ndarray:
        X = np.array(X, dtype=float, copy=True)
        X[:, self.log_columns] = np.log1p(np.clip(X[:, self.log_columns], 0, None))
        return X

    def fit(self, X: np.ndarray) -> Design:
        """Learn the standardisation from training covariates."""
        self.scaler.fit(self._prepare(X))
        return self

    def transform(self, X: np.ndarray, arm: np.ndarray) -> np.ndarray:
        """The model matrix for covariates X (encoded) given each row's arm index."""
        Z = self.scaler.transform(self._prepare(X))
        arm = np.broadcast_to(np.asarray(arm), (len(Z),))
        parts = [Z]
        for a in self.other_arms:
            d = (arm == a).astype(float)[:, None]
            parts.append(d)
            if self.interactions:
                parts.append(d * Z)
        return np.hstack(parts)

    def column_names(self) -> list[str]:
        """Names of the model-matrix columns, matching transform()."""
        names = list(self.covariate_names)
        for a in self.other_arms:
            arm_name = f"arm={self.arm_labels[a]}"
            names.append(arm_name)
            if self.interactions:
                names.extend(f"{arm_name}:{c}" for c in self.covariate_names)
        return names


def _hazard_at(step_function: Any, times: np.ndarray) -> np.ndarray:
    # Cumulative hazard step function evaluated at times; 0 before its first jump.
    idx = np.searchsorted(step_function.x, times, side="right") - 1
    return np.where(idx < 0, 0.0, step_function.y[np.clip(idx, 0, None)])


def _step_at(grid: np.ndarray, values: np.ndarray, times: np.ndarray) -> np.ndarray:
    # Right-continuous step function: value at the last grid point <= t, 1 before the first.
    idx = np.searchsorted(grid, times, side="right") - 1
    padded = np.hstack([np.ones((values.shape[0], 1)), values])
    return padded[:, idx + 1]


class Learner:
    """One fitted model on one (bootstrap) sample; predicts on the higher-is-better scale."""

    def __init__(self, task: Task, config: ModelConfig, design: Design, seed: int, small: bool):
        self.task = task
        self.config = config
        self.design = design
        self.seed = seed
        self.small = small  # bootstrap member: forests use fewer trees
        self.estimator: Any = None
        self.calibration: Any = None  # survival SVM: (score mean, score sd, 1-D Cox)
        self.y_scale: tuple[float, float] = (0.0, 1.0)  # SVR: target standardisation

    def _make(self) -> Any:
        c = self.config
        if self.task == "survival":
            if c.kind == "cox":
                return CoxPHSurvivalAnalysis(alpha=c.cox_alpha, ties="breslow", n_iter=200)
            if c.kind == "rsf":
                return RandomSurvivalForest(
                    n_estimators=c.rsf_bootstrap_trees if self.small else c.rsf_trees,
                    min_samples_leaf=c.rsf_min_samples_leaf,
                    max_features=c.rsf_max_features,
                    low_memory=False,
                    n_jobs=c.n_jobs,
                    random_state=self.seed,
                )
            if c.kind == "svm":
                return FastSurvivalSVM(
                    alpha=c.svm_alpha,
                    rank_ratio=1.0,
                    max_iter=c.svm_max_iter,
                    optimizer="avltree",
                    random_state=self.seed,
                )
            raise ValueError(f"unknown survival model kind {c.kind!r}; use one of {SURVIVAL_KINDS}")
        if c.kind == "svm":
            if self.task == "binary":
                # Platt-scaled SVC: the sigmoid is fitted on 5-fold out-of-fold decision values
                # (scikit-learn 1.9 deprecates SVC(probability=True) for exactly this).
                return CalibratedClassifierCV(
                    SVC(C=c.svc_c, random_state=self.seed), method="sigmoid", cv=5, ensemble=False
                )
            return SVR(C=c.svc_c)
        if c.kind == "rf":
            cls = RandomForestClassifier if self.task == "binary" else RandomForestRegressor
            return cls(
                n_estimators=c.rf_trees // 2 if self.small else c.rf_trees,
                min_samples_leaf=c.rf_min_samples_leaf,
                n_jobs=c.n_jobs,
                random_state=self.seed,
            )
        raise ValueError(f"unknown outcome model kind {c.kind!r}; use one of {OUTCOME_KINDS}")

    def fit(
        self, X: np.ndarray, arm: np.ndarray, y: np.ndarray, event: np.ndarray | None = None
    ) -> Learner:
        """Fit on encoded covariates, arm index and outcome (time + event for survival)."""
        Z = self.design.transform(X, arm)
        self.estimator = self._make()
        with warnings.catch_warnings():
            # Ridge Cox / SVM on correlated interaction columns may stop a few digits early;
            # that is immaterial for predictions and would only flood logs.
            warnings.simplefilter("ignore", ConvergenceWarning)
            if self.task == "survival":
                ys = _surv(event, y)
                self.estimator.fit(Z, ys)
                if self.config.kind == "svm":
                    score = self.estimator.predict(Z)
                    mu, sd = float(score.mean()), float(score.std() or 1.0)
                    cal = CoxPHSurvivalAnalysis(alpha=0.0, ties="breslow")
                    cal.fit(((score - mu) / sd)[:, None], ys)
                    self.calibration = (mu, sd, cal)
            elif self.task == "continuous" and self.config.kind == "svm":
                self.y_scale = (float(y.mean()), float(y.std() or 1.0))
                self.estimator.fit(Z, (y - self.y_scale[0]) / self.y_scale[1])
            else:
                self.estimator.fit(Z, y.astype(int) if self.task == "binary" else y)
        return self

    def risk(self, X: np.ndarray, arm: np.ndarray) -> np.ndarray:
        """Survival risk score (higher = earlier event): Cox/SVM score, RSF cumulative hazard."""
        return self.estimator.predict(self.design.transform(X, arm))

    def survival(self, X: np.ndarray, arm: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Survival probabilities, shape (n, len(times))."""
        Z = self.design.transform(X, arm)
        times = np.atleast_1d(np.asarray(times, dtype=float))
        if self.config.kind == "cox":
            # S(t|x) = exp(-H0(t) exp(lp)), H0 the Breslow baseline the estimator stores.
            H = _hazard_at(self.estimator.cum_baseline_hazard_, times)
            return np.exp(-np.outer(np.exp(self.estimator.predict(Z)), H))
        if self.config.kind == "svm":
            mu, sd, cal = self.calibration
            score = ((self.estimator.predict(Z) - mu) / sd)[:, None]
            H = _hazard_at(cal.cum_baseline_hazard_, times)
            return np.exp(-np.outer(np.exp(cal.predict(score)), H))
        # Forests return whole curves on their time grid: chunk rows to bound memory.
        grid = self.estimator.unique_times_
        return np.vstack(
            [
                _step_at(
                    grid,
                    self.estimator.predict_survival_function(Z[i : i + 2000], return_array=True),
                    times,
                )
                for i in range(0, len(Z), 2000)
            ]
        )

    def value(self, X: np.ndarray, arm: np.ndarray, horizon: float | None) -> np.ndarray:
        """Higher-is-better value per row: S(horizon), P(good outcome) or E[outcome]."""
        if self.task == "survival":
            return self.survival(X, arm, np.array([horizon]))[:, 0]
        Z = self.design.transform(X, arm)
        if self.task == "binary":
            return self.estimator.predict_proba(Z)[:, 1]
        pred = self.estimator.predict(Z)
        return pred * self.y_scale[1] + self.y_scale[0]


def _surv(event: np.ndarray | None, time: np.ndarray) -> np.ndarray:
    y = np.empty(len(time), dtype=[("event", bool), ("time", float)])
    y["event"] = np.asarray(event, dtype=bool)
    y["time"] = time
    return y


def bootstrap_indices(arm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Resample rows with replacement within each arm, keeping the arm sizes of the trial."""
    parts = []
    for a in np.unique(arm):
        rows = np.flatnonzero(arm == a)
        parts.append(rng.choice(rows, size=len(rows), replace=True))
    return np.sort(np.concatenate(parts))


@dataclass
class TreatmentModel:
    """A fitted model for one trial and outcome, its bootstrap refits and what it was fit on."""

    trial_key: str
    outcome: str  # "survival" or an ExtraOutcome key
    task: Task
    config: ModelConfig
    feature_names: tuple[str, ...]
    arm_labels: tuple[str, ...]
    reference_arm: int
    time_unit: str
    horizon: float | None  # default horizon for survival models
    design: Design
    main: Learner
    bootstraps: list[Learner]
    training: dict[str, Any]
    background: np.ndarray  # encoded covariates of a seeded sample of training rows (Shapley)
    metrics: dict[str, Any] = field(default_factory=dict)
    sha256: str | None = None

    @property
    def kind(self) -> str:
        """Model family: cox, rsf, svm or rf."""
        return self.config.kind

    @property
    def definition(self) -> TrialDefinition:
        """The trial definition this model was fitted for."""
        return get_trial(self.trial_key)

    @property
    def n_arms(self) -> int:
        """Number of arms."""
        return len(self.arm_labels)

    def value_by_arm(
        self, X: np.ndarray, horizon: float | None = None, members: str = "main"
    ) -> np.ndarray:
        """Higher-is-better value of every row under every arm: (n, arms), or (1+B, n, arms)
        with members="all" (main model first, then the bootstrap refits)."""
        X = np.asarray(X, dtype=float)
        horizon = self.resolve_horizon(horizon)
        learners = [self.main] if members == "main" else [self.main, *self.bootstraps]
        n = len(X)
        # One predict call per learner over all arms: stacking is much faster for forests.
        stacked_X = np.tile(X, (self.n_arms, 1))
        stacked_arm = np.repeat(np.arange(self.n_arms), n)
        out = np.stack(
            [lr.value(stacked_X, stacked_arm, horizon).reshape(self.n_arms, n).T for lr in learners]
        )
        return out[0] if members == "main" else out

    def survival_by_arm(self, X: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Main-model survival curves of every row under every arm: (n, arms, len(times))."""
        if self.task != "survival":
            raise ValueError("survival curves exist only for time-to-event models")
        X = np.asarray(X, dtype=float)
        n = len(X)
        stacked = self.main.survival(
            np.tile(X, (self.n_arms, 1)), np.repeat(np.arange(self.n_arms), n), times
        )
        return stacked.reshape(self.n_arms, n, -1).transpose(1, 0, 2)

    def risk(self, X: np.ndarray, arm: np.ndarray) -> np.ndarray:
        """Main-model risk score under the given arms (survival models; higher = worse)."""
        return self.main.risk(np.asarray(X, dtype=float), np.asarray(arm))

    def resolve_horizon(self, horizon: float | None) -> float | None:
        """The horizon to use (default if None); ValueError outside (0, longest follow-up]."""
        if self.task != "survival":
            return None
        h = float(self.horizon if horizon is None else horizon)
        max_time = float(self.training["max_time"])
        if not 0 < h <= max_time:
            raise ValueError(
                f"horizon must be between 0 and {max_time:g} {self.time_unit} "
                "(the longest follow-up in training)"
            )
        return h

    def to_bytes(self) -> bytes:
        """Serialise (joblib pickle of plain dict + sklearn objects); sets and returns sha256."""
        state = {k: v for k, v in self.__dict__.items() if k != "sha256"}
        buf = io.BytesIO()
        joblib.dump(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "config": asdict(self.config),
                "state": state,
            },
            buf,
            compress=3,
        )
        data = buf.getvalue()
        self.sha256 = hashlib.sha256(data).hexdigest()
        return data

    @classmethod
    def from_bytes(cls, data: bytes, expected_sha256: str | None = None) -> TreatmentModel:
        """Load bytes from to_bytes(); ValueError if the checksum or format does not match.

        Unpickling runs code: only load bundles MedAI wrote itself (check the sha256)."""
        digest = hashlib.sha256(data).hexdigest()
        if expected_sha256 is not None and digest != expected_sha256:
            raise ValueError("model bytes do not match the expected sha256")
        payload = joblib.load(io.BytesIO(data))  # noqa: S301 - own artifacts, sha256-checked
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError("not a MedAI treatment-effect model")
        if payload.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported format version {payload.get('format_version')}")
        model = cls(**payload["state"])
        model.sha256 = digest
        return model


def _outcome_task(defn: TrialDefinition, outcome: str) -> Task:
    if outcome == "survival":
        return "survival"
    for o in defn.outcomes:
        if o.key == outcome:
            return o.kind
    raise ValueError(f"{defn.key} has no outcome {outcome!r}")


def _fit_learner(
    task: Task,
    config: ModelConfig,
    design: Design,
    data: TrialData,
    outcome: str,
    seed: int,
    small: bool,
) -> Learner:
    learner = Learner(task, config, design, seed, small)
    X = data.X.to_numpy(dtype=float)
    if task == "survival":
        return learner.fit(X, data.arm, data.time, data.event)
    return learner.fit(X, data.arm, data.outcomes[outcome])


def fit_treatment_model(
    data: TrialData,
    config: ModelConfig | None = None,
    outcome: str = "survival",
    horizon: float | None = None,
    n_background: int = 50,
) -> TreatmentModel:
    """Fit the main model and `config.n_bootstrap` arm-stratified bootstrap refits, seeded."""
    config = config or ModelConfig()
    defn = data.definition
    task = _outcome_task(defn, outcome)
    started = _time.perf_counter()
    design = Design(defn, config.uses_interactions(task), defn.reference_arm).fit(
        data.X.to_numpy(dtype=float)
    )
    # Independent, reproducible streams: one for the main fit, one per bootstrap refit.
    seeds = np.random.SeedSequence(config.seed).spawn(config.n_bootstrap + 2)
    main_seed = int(seeds[0].generate_state(1)[0] % (2**31 - 1))
    main = _fit_learner(task, config, design, data, outcome, main_seed, small=False)
    main_seconds = _time.perf_counter() - started
    bootstraps = []
    for ss in seeds[2:]:
        rng = np.random.default_rng(ss)
        rows = bootstrap_indices(data.arm, rng)
        seed = int(rng.integers(2**31 - 1))
        bootstraps.append(
            _fit_learner(task, config, design, data.subset(rows), outcome, seed, small=True)
        )
    bg_rng = np.random.default_rng(seeds[1])
    bg_rows = np.sort(bg_rng.choice(len(data), size=min(n_background, len(data)), replace=False))

    counts = np.bincount(data.arm, minlength=defn.n_arms)
    training: dict[str, Any] = {
        "n": len(data),
        "arm_counts": counts.tolist(),
        "arm_probabilities": (counts / counts.sum()).tolist(),
        "covariate_ranges": _ranges(data),
        # The multivariate "is this patient like the trial's?" check (applicability.py).
        "trial_distance": fit_trial_distance(defn, data.X.to_numpy(dtype=float)),
        "fit_seconds_main": round(main_seconds, 3),
        "fit_seconds_total": round(_time.perf_counter() - started, 3),
    }
    if task == "survival":
        training.update(
            events=int(data.event.sum()),
            max_time=float(data.time.max()),
            max_event_time=float(data.time[data.event].max()),
        )
    return TreatmentModel(
        trial_key=defn.key,
        outcome=outcome,
        task=task,
        config=config,
        feature_names=defn.feature_names,
        arm_labels=defn.arm_labels,
        reference_arm=defn.reference_arm,
        time_unit=defn.survival.time_unit,
        horizon=(horizon or defn.default_horizon) if task == "survival" else None,
        design=design,
        main=main,
        bootstraps=bootstraps,
        training=training,
        background=data.X.to_numpy(dtype=float)[bg_rows],
    )


def _ranges(data: TrialData) -> dict[str, Any]:
    # The population the model has seen: numeric min/max, levels and 0/1 counts.
    out: dict[str, Any] = {}
    for cov in data.definition.covariates:
        col = data.raw[cov.name]
        if cov.kind == "numeric":
            out[cov.name] = {"min": float(col.min()), "max": float(col.max()), "unit": cov.unit}
        else:
            counts = pd.Series(col).astype(str).value_counts()
            out[cov.name] = {str(k): int(v) for k, v in counts.items()}
    return out
