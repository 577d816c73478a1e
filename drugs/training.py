"""Property-predictor training work, done outside any transaction: an endpoint's molecules
loaded (shipped files first) and a predictor cross-validated and fitted on them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medai_site.jobs.exceptions import JobError
from medai_site.jobs.runtime import Progress


@dataclass
class FittedPredictor:
    """A fitted predictor artifact, its cross-validated metrics and the data it learnt from."""

    artifact: Any
    metrics: dict[str, Any]
    task_type: str
    n: int


def predictor_fit(
    *, endpoint: str, kind: str, cv_folds: int, progress: Progress
) -> FittedPredictor:
    """Cross-validate and fit a ``kind`` predictor of ``endpoint``, reporting progress from 3
    to 90 %; JobError when the endpoint is unknown, unreadable or cannot be fitted."""
    from drugs import sources
    from drugs.ml.predictors import ENDPOINTS, fit_predictor, load_endpoint

    if endpoint not in ENDPOINTS:
        raise JobError(f"Unknown endpoint {endpoint!r}.")
    progress.update(3, f"Loading the {endpoint} data set", force=True)
    spec = ENDPOINTS[endpoint]
    shipped = sources.moleculenet_dir()
    try:
        smiles, y, task_type = load_endpoint(
            endpoint, shipped if (shipped / spec.file).is_file() else None
        )
    except (OSError, ValueError) as exc:
        raise JobError(f"The {endpoint} data could not be read: {exc}") from None

    def on_progress(fraction: float, stage: str = "") -> None:
        progress.update(5 + 85 * float(fraction), stage or None)

    progress.update(5, f"Cross-validating a {kind.replace('_', ' ')} on {len(smiles):,} molecules")
    try:
        artifact, metrics = fit_predictor(
            smiles,
            y,
            task_type,
            kind=kind,
            cv_folds=cv_folds,
            seed=0,
            endpoint=endpoint,
            on_progress=on_progress,
        )
    except ValueError as exc:
        raise JobError(f"The {endpoint} predictor could not be trained: {exc}") from None
    return FittedPredictor(
        artifact=artifact, metrics=dict(metrics), task_type=task_type, n=len(smiles)
    )
