"""The held-out comparison: recurrent models beside the baselines on the SAME test patients.

Everything is fitted on the train split, early-stopped / tuned / Platt-calibrated on the
validation split, and scored once on the test split (``stratified_split``'s seeded 60/20/20).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from remote_care.ml.baselines import (
    fit_summary_gbm,
    fit_summary_logistic,
    saps1_scores,
    summary_features,
    worst_news2,
)
from remote_care.ml.evaluate import ScoreReport, auroc, paired_bootstrap_diff, score_report
from remote_care.ml.features import VITALS, VITALS_SOURCES, build_batch
from remote_care.ml.model import RiskModel
from remote_care.ml.physionet import Split, Stay, restrict_stay, stratified_split

__all__ = [
    "ALERT_RATES",
    "Comparison",
    "CrossValidation",
    "compare_on_test",
    "cross_validate",
    "format_cross_validation",
    "format_table",
    "vitals_only",
]

#: Operating points compared at a matched alert rate: every score flags the same share of test
#: patients. NEWS2's own triggers are useless as a matched rate in intensive care (the worst
#: NEWS2 of the first 48 h is >= 7 for about three stays in four), so fixed rates are used.
ALERT_RATES: Mapping[str, float] = {"top 20%": 0.2, "top 10%": 0.1}
#: Hours after admission at which the running risk is also scored (risk updated as data arrive).
UPDATE_HOURS = (6, 12, 24, 36, 48)


def vitals_only(stays: Sequence[Stay]) -> list[Stay]:
    """The stays as a MedAI remote device would see them: vital signs, age and sex only."""
    return [restrict_stay(s, VITALS_SOURCES, VITALS.static) for s in stays]


@dataclass
class Comparison:
    """Reports per score, paired AUROC differences, and the facts needed to read them."""

    split: dict[str, Any]
    reports: list[ScoreReport]
    differences: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "split": self.split,
            "reports": [r.to_dict() for r in self.reports],
            "differences": {k: list(v) for k, v in self.differences.items()},
            "notes": self.notes,
        }


def compare_on_test(
    stays: Sequence[Stay],
    split: Split,
    risk_models: Mapping[str, tuple[RiskModel, bool]],
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> Comparison:
    """Score ``risk_models`` ({row name: (model, vitals_only_input)}) and the baselines on the
    test split. Baselines: summary GBM (all variables and vitals only), summary logistic
    regression, SAPS-I (missing values filled with the training median so every score is
    judged on the same patients), and the worst NEWS2 of the first 48 h."""
    y = np.array([s.death for s in stays], dtype=np.int64)
    tr, va, te = split.train, split.val, split.test
    test = [stays[i] for i in te]
    test_v = vitals_only(test)
    yt = y[te]
    scores: dict[str, tuple[np.ndarray, bool]] = {}
    by_hour: dict[str, dict[int, float]] = {}
    for name, (model, vit) in risk_models.items():
        xs, ss = build_batch(test_v if vit else test, model.spec, model.normaliser)
        traj = model.calibrate(model.logits(xs, ss))
        scores[name] = (traj[:, -1], True)
        by_hour[name] = {h: auroc(yt, traj[:, h - 1]) for h in UPDATE_HOURS}

    x = summary_features(stays)
    gbm = fit_summary_gbm(x[tr], y[tr], x[va], y[va], seed=seed)
    scores["GBM on summaries (all variables)"] = (gbm.predict_proba(x[te]), True)
    xv = summary_features(vitals_only(stays))
    gbm_v = fit_summary_gbm(xv[tr], y[tr], xv[va], y[va], seed=seed)
    scores["GBM on summaries (vitals only)"] = (gbm_v.predict_proba(xv[te]), True)
    lr = fit_summary_logistic(x[tr], y[tr], x[va], y[va])
    scores["Logistic on summaries (all variables)"] = (lr.predict_proba(x[te]), True)
    saps = saps1_scores(stays)
    fill = float(np.nanmedian(saps[tr]))
    scores["SAPS-I"] = (np.where(np.isnan(saps[te]), fill, saps[te]), False)
    news = np.array([worst_news2(s) for s in test])
    scores["Worst NEWS2 (first 48 h)"] = (news, False)
    by_hour["Worst NEWS2 so far"] = {
        h: auroc(yt, np.array([worst_news2(s, until_minute=60 * h) for s in test]))
        for h in UPDATE_HOURS
    }
    reports = [
        score_report(name, yt, s, is_probability=prob, alert_rates=ALERT_RATES, n_boot=n_boot)
        for name, (s, prob) in scores.items()
    ]
    ref = scores["GBM on summaries (all variables)"][0]
    diffs = {
        f"{name} - GBM on summaries (all variables)": paired_bootstrap_diff(
            yt, s, ref, n_boot=n_boot
        )
        for name, (s, _) in scores.items()
        if name in risk_models
    }
    # A model scored on vitals only is also compared with the GBM that sees the same inputs.
    ref_v = scores["GBM on summaries (vitals only)"][0]
    for name, (_model, vit) in risk_models.items():
        if vit:
            diffs[f"{name} - GBM on summaries (vitals only)"] = paired_bootstrap_diff(
                yt, scores[name][0], ref_v, n_boot=n_boot
            )
    notes = {
        "test_event_rate": float(yt.mean()),
        "saps1_missing_in_test": int(np.isnan(saps[te]).sum()),
        "news2_ge5_alert_rate": float((news >= 5).mean()),
        "news2_ge7_alert_rate": float((news >= 7).mean()),
        "gbm_iterations": int(gbm.estimator.n_iter_),
        "auroc_by_hour": by_hour,
    }
    return Comparison(split.to_dict(), reports, diffs, notes)


def _f(v: float | None, nd: int = 3) -> str:
    return "-" if v is None or v != v else f"{v:.{nd}f}"


def report_table(reports: Sequence[ScoreReport]) -> str:
    """A Markdown table of score reports (one row per score)."""
    rates = list(ALERT_RATES)
    head = ["score", "AUROC (95% CI)", "AUPRC", "Brier", "ECE"] + [
        f"sens / PPV @ {r}" for r in rates
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in reports:
        cells = [
            r.name,
            f"{_f(r.auroc)} ({_f(r.auroc_ci[0])}-{_f(r.auroc_ci[1])})",
            _f(r.auprc),
            _f(r.brier),
            _f(r.ece),
        ] + [f"{_f(r.at_rate[k].sensitivity, 2)} / {_f(r.at_rate[k].ppv, 2)}" for k in rates]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_table(c: Comparison) -> str:
    """A Markdown table of the comparison (one row per score) with its differences, the
    running risk's AUROC by hour and the split."""
    out = report_table(c.reports)
    if c.differences:
        out += "\n\nPaired bootstrap AUROC differences (same test patients):\n"
        for k, (d, lo, hi) in c.differences.items():
            out += f"- {k}: {d:+.3f} (95% CI {lo:+.3f} to {hi:+.3f})\n"
    by_hour = c.notes.get("auroc_by_hour", {})
    if by_hour:
        out += "\nAUROC of the running risk, by hours since admission:\n"
        out += "| score | " + " | ".join(f"{h} h" for h in UPDATE_HOURS) + " |\n"
        out += "|---|" + "---|" * len(UPDATE_HOURS) + "\n"
        for name, row in by_hour.items():
            out += f"| {name} | " + " | ".join(_f(row[h]) for h in UPDATE_HOURS) + " |\n"
    n = c.reports[0]
    rest = {k: v for k, v in c.notes.items() if k != "auroc_by_hour"}
    out += f"\nTest split: {n.n} stays, {n.n_events} deaths (split {c.split}). {rest}\n"
    return out


# --------------------------------------------------------------------------------------------
# Cross-validated comparison: every stay is a held-out patient once
# --------------------------------------------------------------------------------------------

GRU_CV = "GRU"
GBM_CV = "GBM on summaries"
LOGISTIC_CV = "Logistic on summaries"


@dataclass
class CrossValidation:
    """Out-of-fold comparison of the recurrent model with the summary baselines: per-fold
    AUROCs, reports on the pooled out-of-fold risks (every stay scored once, by models that
    never saw it), and the paired bootstrap difference GRU - GBM on those same stays."""

    spec: str
    n_folds: int
    folds: list[dict[str, Any]]
    reports: list[ScoreReport]
    differences: dict[str, tuple[float, float, float]]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "spec": self.spec,
            "n_folds": self.n_folds,
            "folds": self.folds,
            "reports": [r.to_dict() for r in self.reports],
            "differences": {k: list(v) for k, v in self.differences.items()},
            "seconds": self.seconds,
        }


def stratified_folds(labels: Sequence[int] | np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold number of each stay, with the outcome rate equal across folds (seeded)."""
    y = np.asarray(labels)
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), dtype=np.int64)
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % n_folds
    return fold


def cross_validate(
    stays: Sequence[Stay],
    config: Any,
    *,
    n_folds: int = 5,
    seed: int = 2012,
    n_boot: int = 1000,
    on_fold: Any = None,
) -> CrossValidation:
    """``n_folds``-fold cross-validation of the recurrent model (``config``, a TrainConfig)
    against the summary GBM and logistic regression. In each fold the other stays are split
    75/25 (stratified) into training and validation, used identically by every model (fit,
    early stopping and Platt scaling); the fold's stays are scored once. A ``vitals`` model is
    compared with baselines on vitals-only summaries and scored on vitals-only stays."""
    import time

    from remote_care.ml.train import train_risk_model

    t0 = time.perf_counter()
    vit = config.spec == "vitals"
    y = np.array([s.death for s in stays], dtype=np.int64)
    fold = stratified_folds(y, n_folds, seed)
    x = summary_features(vitals_only(stays) if vit else stays)
    oof = {name: np.full(len(y), np.nan) for name in (GRU_CV, GBM_CV, LOGISTIC_CV)}
    folds: list[dict[str, Any]] = []
    for k in range(n_folds):
        test = np.flatnonzero(fold == k)
        rest = np.flatnonzero(fold != k)
        inner = stratified_split(y[rest], seed=seed + k, fractions=(0.75, 0.25, 0.0))
        tr = rest[np.concatenate([inner.train, inner.test])]
        va = rest[inner.val]
        model = train_risk_model([stays[i] for i in tr], [stays[i] for i in va], config)
        held = [stays[i] for i in test]
        xs, ss = build_batch(vitals_only(held) if vit else held, model.spec, model.normaliser)
        oof[GRU_CV][test] = model.calibrate(model.logits(xs, ss)[:, -1])
        gbm = fit_summary_gbm(x[tr], y[tr], x[va], y[va], seed=seed)
        oof[GBM_CV][test] = gbm.predict_proba(x[test])
        lr = fit_summary_logistic(x[tr], y[tr], x[va], y[va])
        oof[LOGISTIC_CV][test] = lr.predict_proba(x[test])
        row = {
            "fold": k,
            "n": int(len(test)),
            "deaths": int(y[test].sum()),
            **{name: auroc(y[test], v[test]) for name, v in oof.items()},
            "val_auroc_gru": model.metrics["val_auroc"],
            "seconds": time.perf_counter() - t0,
        }
        folds.append(row)
        if on_fold is not None:
            on_fold(row)
    reports = [
        score_report(name, y, v, is_probability=True, alert_rates=ALERT_RATES, n_boot=n_boot)
        for name, v in oof.items()
    ]
    diffs = {
        f"{GRU_CV} - {other}": paired_bootstrap_diff(y, oof[GRU_CV], oof[other], n_boot=n_boot)
        for other in (GBM_CV, LOGISTIC_CV)
    }
    return CrossValidation(config.spec, n_folds, folds, reports, diffs, time.perf_counter() - t0)


def format_cross_validation(cv: CrossValidation) -> str:
    """Markdown: per-fold AUROCs, pooled out-of-fold reports and the paired differences."""
    names = (GRU_CV, GBM_CV, LOGISTIC_CV)
    out = f"{cv.n_folds}-fold cross-validation, {cv.spec} inputs\n\n"
    out += "| fold | stays | deaths | " + " | ".join(f"AUROC {n}" for n in names) + " |\n"
    out += "|---|---|---|" + "---|" * len(names) + "\n"
    for r in cv.folds:
        out += f"| {r['fold'] + 1} | {r['n']} | {r['deaths']} | "
        out += " | ".join(_f(r[n]) for n in names) + " |\n"
    wins = sum(r[GRU_CV] > r[GBM_CV] for r in cv.folds)
    out += f"\nGRU above the GBM in {wins} of {cv.n_folds} folds.\n\nPooled out-of-fold:\n\n"
    out += report_table(cv.reports)
    out += "\n\nPaired bootstrap AUROC differences (every stay, out of fold):\n"
    for k, (d, lo, hi) in cv.differences.items():
        out += f"- {k}: {d:+.3f} (95% CI {lo:+.3f} to {hi:+.3f})\n"
    out += f"\n({cv.seconds:.0f} s)\n"
    return out
