"""Baselines for in-hospital death on PhysioNet 2012: NEWS2 from the charted vitals, SAPS-I,
and gradient-boosted / logistic models on per-stay summary features.

NEWS2 mapping (PhysioNet variable -> NEWS2 input, scored with
``remote_care.physiology.news2.score_news2``):

* respiration rate <- RespRate; pulse <- HR; temperature <- Temp
* SpO2 <- SaO2 (arterial saturation from blood gases: the only saturation in the set)
* systolic BP <- the more recent of SysABP (invasive) and NISysABP (cuff)
* consciousness <- GCS via 15 A, 14 C, 9-13 V, 4-8 P, 3 U (Kelly, Upex & Bateman 2004 relate
  AVPU to GCS: A ~15, V ~13, P ~8, U ~3-6). Sedated ventilated patients have low GCS; the chart
  does not record sedation, so they score as they are charted.
* air or oxygen <- oxygen when MechVent was charted, or FiO2 > 0.21, within the last 12 hours
  (MechVent is charted while ventilated; no row means not ventilated), else air.

A NEWS2 set is scored at every minute at which any of those vitals was charted, from the latest
value of each parameter so far (last observation carried forward); a parameter never charted yet
is missing and the set's total is the partial lower bound, as ``score_news2`` defines it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from remote_care.ml.physionet import STATIC_VARIABLES, TIME_SERIES_VARIABLES, Stay
from remote_care.physiology.news2 import PLAUSIBLE_RANGE, News2Result, Observation, score_news2

__all__ = [
    "NEWS2_SOURCES",
    "News2Set",
    "SummaryModel",
    "fit_platt",
    "fit_summary_gbm",
    "fit_summary_logistic",
    "gcs_to_acvpu",
    "news2_series",
    "saps1_scores",
    "summary_feature_names",
    "summary_features",
    "worst_news2",
]

#: PhysioNet variables the NEWS2 mapping reads.
NEWS2_SOURCES = (
    "RespRate",
    "HR",
    "Temp",
    "SaO2",
    "SysABP",
    "NISysABP",
    "GCS",
    "MechVent",
    "FiO2",
)
OXYGEN_LOOKBACK_MIN = 12 * 60


def gcs_to_acvpu(gcs: float) -> str:
    """Map a Glasgow Coma Scale total to an ACVPU letter (see the module docstring)."""
    g = round(gcs)
    if g >= 15:
        return "A"
    if g == 14:
        return "C"
    if g >= 9:
        return "V"
    if g >= 4:
        return "P"
    return "U"


@dataclass(frozen=True)
class News2Set:
    """One NEWS2 set scored from a PhysioNet stay at ``minute`` since admission."""

    minute: float
    observation: Observation
    result: News2Result


def _in_news2_range(name: str, v: float) -> float | None:
    lo, hi = PLAUSIBLE_RANGE[name]
    return v if lo <= v <= hi else None


def news2_series(stay: Stay) -> list[News2Set]:
    """Score NEWS2 at every minute a NEWS2 vital was charted (see the module docstring)."""
    idx = {v: TIME_SERIES_VARIABLES.index(v) for v in NEWS2_SOURCES}
    sel = np.isin(stay.var, list(idx.values()))
    times, var, values = stay.times[sel], stay.var[sel], stay.values[sel]
    latest: dict[str, tuple[float, float]] = {}
    out: list[News2Set] = []
    n = len(times)
    i = 0
    while i < n:
        t = times[i]
        while i < n and times[i] == t:
            latest[TIME_SERIES_VARIABLES[int(var[i])]] = (float(t), float(values[i]))
            i += 1

        def val(name: str) -> float | None:
            return latest[name][1] if name in latest else None

        sbp_candidates = [latest[k] for k in ("SysABP", "NISysABP") if k in latest]
        sbp = max(sbp_candidates)[1] if sbp_candidates else None
        recent_vent = "MechVent" in latest and t - latest["MechVent"][0] <= OXYGEN_LOOKBACK_MIN
        recent_fio2 = (
            "FiO2" in latest
            and t - latest["FiO2"][0] <= OXYGEN_LOOKBACK_MIN
            and latest["FiO2"][1] > 0.21
        )
        gcs = val("GCS")
        obs = Observation(
            respiration_rate=_opt(val("RespRate"), "respiration_rate"),
            spo2=_opt(val("SaO2"), "spo2"),
            on_oxygen=bool(recent_vent or recent_fio2),
            systolic_bp=_opt(sbp, "systolic_bp"),
            pulse=_opt(val("HR"), "pulse"),
            consciousness=gcs_to_acvpu(gcs) if gcs is not None else None,
            temperature=_opt(val("Temp"), "temperature"),
        )
        out.append(News2Set(float(t), obs, score_news2(obs)))
    return out


def _opt(v: float | None, name: str) -> float | None:
    return None if v is None else _in_news2_range(name, v)


def worst_news2(stay: Stay, *, until_minute: float = 48 * 60) -> float:
    """Highest NEWS2 total (partial sets count as their lower bound) over the stay's first
    ``until_minute`` minutes; 0 when no vital was charted."""
    totals = [s.result.total for s in news2_series(stay) if s.minute <= until_minute]
    return float(max(totals)) if totals else 0.0


def saps1_scores(stays: Sequence[Stay]) -> np.ndarray:
    """SAPS-I from the outcomes file; NaN where it was not recorded (-1)."""
    return np.array([np.nan if s.saps1 is None else s.saps1 for s in stays], dtype=np.float64)


_SUMMARY_STATS = ("min", "max", "mean", "first", "last", "count")


def summary_feature_names() -> list[str]:
    """Column names of :func:`summary_features`."""
    names = [s for s in STATIC_VARIABLES]
    for v in TIME_SERIES_VARIABLES:
        names += [f"{v}_{k}" for k in _SUMMARY_STATS]
    return names


def summary_features(stays: Sequence[Stay], *, until_minute: float = 48 * 60) -> np.ndarray:
    """Per-stay static descriptors plus min/max/mean/first/last/count of every variable
    (NaN when never measured; count 0), over the first ``until_minute`` minutes."""
    n_var = len(TIME_SERIES_VARIABLES)
    rows = np.full((len(stays), len(STATIC_VARIABLES) + n_var * len(_SUMMARY_STATS)), np.nan)
    for r, s in enumerate(stays):
        rows[r, : len(STATIC_VARIABLES)] = [s.static[k] for k in STATIC_VARIABLES]
        keep = s.times <= until_minute
        t, var, val = s.times[keep], s.var[keep], s.values[keep].astype(np.float64)
        for vi in range(n_var):
            x = val[var == vi]
            base = len(STATIC_VARIABLES) + vi * len(_SUMMARY_STATS)
            if len(x):
                rows[r, base : base + 5] = [x.min(), x.max(), x.mean(), x[0], x[-1]]
            rows[r, base + 5] = len(x)
        del t
    return rows


@dataclass
class SummaryModel:
    """A scikit-learn classifier on summary features with the columns it kept and a Platt
    calibration fitted on the validation split."""

    name: str
    estimator: Any
    columns: np.ndarray
    platt: tuple[float, float] = (1.0, 0.0)

    def decision(self, x: np.ndarray) -> np.ndarray:
        """Uncalibrated log-odds."""
        p = np.clip(self.estimator.predict_proba(x[:, self.columns])[:, 1], 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probability of the event."""
        a, b = self.platt
        return 1.0 / (1.0 + np.exp(-(a * self.decision(x) + b)))


def fit_platt(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt scaling (a, b) by logistic regression of the labels on the logits."""
    lr = LogisticRegression(C=1e4, max_iter=1000)
    lr.fit(np.asarray(logits, dtype=np.float64).reshape(-1, 1), np.asarray(y))
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def _observed_columns(x: np.ndarray) -> np.ndarray:
    # scikit-learn 1.9.1's HistGradientBoosting fails ("window shape cannot be larger than input
    # array shape") on a column with no observed value, and such a column carries nothing.
    return np.flatnonzero(~np.isnan(x).all(axis=0))


def fit_summary_gbm(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    seed: int = 0,
) -> SummaryModel:
    """HistGradientBoosting on summary features (native NaN handling), iterations chosen by
    its internal early stopping on a 10 % hold-out of train; Platt-calibrated on validation."""
    cols = _observed_columns(x_train)
    gbm = HistGradientBoostingClassifier(
        learning_rate=0.05,
        max_iter=500,
        max_leaf_nodes=15,
        min_samples_leaf=20,
        l2_regularization=1.0,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=30,
        scoring="roc_auc",
        random_state=seed,
    )
    gbm.fit(x_train[:, cols], y_train)
    model = SummaryModel("gbm_summary", gbm, cols)
    model.platt = fit_platt(model.decision(x_val), y_val)
    return model


def fit_summary_logistic(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray
) -> SummaryModel:
    """L2 logistic regression on summary features: median imputation with missing-value
    indicators, standardised; C chosen on validation AUROC; Platt-calibrated on validation."""
    cols = _observed_columns(x_train)
    best: tuple[float, Any] | None = None
    for c in (0.003, 0.01, 0.03, 0.1, 0.3):
        pipe = make_pipeline(
            SimpleImputer(strategy="median", add_indicator=True),
            StandardScaler(),
            LogisticRegression(C=c, max_iter=2000),
        )
        pipe.fit(x_train[:, cols], y_train)
        auc = roc_auc_score(y_val, pipe.predict_proba(x_val[:, cols])[:, 1])
        if best is None or auc > best[0]:
            best = (auc, pipe)
    assert best is not None
    model = SummaryModel("logistic_summary", best[1], cols)
    model.platt = fit_platt(model.decision(x_val), y_val)
    return model
