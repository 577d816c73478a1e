"""Background job of disease-progression analyses."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from medai_ml.plain import rounded
from medai_site.jobs.models import Job
from medai_site.jobs.runtime import Progress, job_row, job_task
from remote_care.progression.services import PROGRESSION_KIND


def _pbc_visits() -> dict[int, list[dict[str, Any]]]:
    from remote_care.ml.progression import load_pbcseq

    frame = load_pbcseq()
    visits: dict[int, list[dict[str, Any]]] = {}
    for row in frame.to_dict("records"):
        visits.setdefault(int(row["id"]), []).append(row)
    return visits


@job_task(kind=PROGRESSION_KIND, label="disease-progression analysis", queue="ml")
def progression_analyse(job: Job, progress: Progress) -> dict[str, Any]:
    """Cross-validate the regression, decision-tree, neural-network (and boosting) models on
    the analysis's data set with conformal prediction intervals, refit the best, and forecast
    every patient (pbcseq: one-visit-ahead along each trajectory, then the next six months)."""
    from remote_care.ml.progression import (
        cross_validate,
        diabetes_dataset,
        fit_progression_model,
        forecast_trajectories,
        pbc_next_visit_dataset,
    )
    from remote_care.models import ProgressionAnalysis

    analysis = job_row(
        ProgressionAnalysis.objects,
        job=job,
        param="analysis_id",
        missing="The analysis to run no longer exists.",
    )
    level = float(analysis.settings.get("level", 0.9))
    folds = int(analysis.settings.get("folds", 5))
    progress.update(5, "Loading the data set", force=True)
    data = pbc_next_visit_dataset() if analysis.dataset == "pbcseq" else diabetes_dataset()
    progress.update(15, f"{folds}-fold cross-validation of every model", force=True)
    cv = [r.to_dict() for r in cross_validate(data, n_splits=folds, level=level)]
    learned = [r for r in cv if r["model"] != "persistence"]
    best = min(learned, key=lambda r: r["rmse"])["model"]
    progress.update(70, f"Refitting {best} on every patient", force=True)
    model = fit_progression_model(data, best, level=level)
    results: dict[str, Any] = {
        "target": data.target,
        "n_rows": int(len(data.y)),
        "n_patients": int(len(set(data.groups.tolist()))) if data.groups is not None else None,
        "features": list(data.feature_names),
        "cv": cv,
        "best": best,
        "level": level,
    }
    if analysis.dataset == "pbcseq":
        patients: dict[str, Any] = {}
        visits = _pbc_visits()
        for pid, (trajectory, nxt) in forecast_trajectories(visits, model).items():
            first = min(visits[pid], key=lambda r: float(r["day"]))
            patients[str(pid)] = {
                **trajectory.to_dict(),
                "next": nxt.to_dict(),
                "baseline": {k: rounded(first.get(k)) for k in ("age", "sex", "trt", "stage")},
            }
        results["patients"] = patients
    else:
        # Each patient's held-out forecast would need the CV models; the refit model's interval
        # for every patient is shown beside the observed value instead.
        point, lower, upper = model.predict_interval(data.x)
        results["patients"] = {
            str(i): {
                "observed": float(data.y[i]),
                "point": float(point[i]),
                "lower": float(lower[i]),
                "upper": float(upper[i]),
                "features": {n: float(v) for n, v in zip(data.feature_names, data.x[i])},
            }
            for i in range(len(data.y))
        }
    with progress.finishing() as outcome:
        analysis.results = results
        analysis.save(update_fields=["results"])
        best_row = next(r for r in cv if r["model"] == best)
        outcome.result = {
            "summary": f"Best model {best}: cross-validated RMSE {best_row['rmse']:.3f}, "
            f"{int(level * 100)} % intervals cover {best_row['coverage']:.0%}.",
            "url": reverse("remote_care:progression_detail", args=[analysis.pk]),
        }
    return outcome.result
