"""Property-predictor training work, done outside any transaction: an endpoint's molecules
loaded (shipped files first) and a predictor cross-validated and fitted on them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medai_site.jobs.exceptions import JobError
from medai_site.jobs.runtime import ProgressSink
from medai_site.registry.shipped import TrainedModel


@dataclass
class FittedPredictor:
    """A fitted predictor artifact, its cross-validated metrics and the data it learnt from."""

    artifact: Any
    metrics: dict[str, Any]
    task_type: str
    n: int


def predictor_fit(
    *, endpoint: str, kind: str, cv_folds: int, progress: ProgressSink
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


def predictor_train(
    *, endpoint: str, kind: str, cv_folds: int, progress: ProgressSink, task: str = ""
) -> TrainedModel:
    """:func:`predictor_fit`, as the registry stores the version (``task``: the endpoint's
    predictor task unless given). The training job and the shipped demo predictor both train
    through here; JobError as predictor_fit."""
    from drugs.artifacts import artifact_bytes
    from drugs.ml.predictors import ENDPOINTS
    from drugs.models import predictor_task
    from drugs.selectors import predictor_summary

    fitted = predictor_fit(endpoint=endpoint, kind=kind, cv_folds=cv_folds, progress=progress)
    spec = ENDPOINTS[endpoint]
    return TrainedModel(
        task=task or predictor_task(endpoint),
        content=artifact_bytes(fitted.artifact.save),
        params={"kind": kind, "cv_folds": cv_folds, "seed": 0},
        training_data={
            "endpoint": endpoint,
            "task_type": fitted.task_type,
            "n": fitted.n,
            "description": spec.description,
            "units": spec.units,
            "file": spec.file,
        },
        metrics=fitted.metrics,
        finding=predictor_summary(fitted.metrics),
    )


#: The shipped demo property predictor (data/models/drugs-predictor-bbbp/): the random forest
#: of blood-brain barrier penetration seed_demo used to queue.
SHIPPED_SLUG = "drugs-predictor-bbbp"
SHIPPED_ENDPOINT = "BBBP"
SHIPPED_KIND = "random_forest"


def bbbp_build(log: ProgressSink) -> TrainedModel:
    """The shipped BBBP predictor, cross-validated and fitted as a training job does."""
    return predictor_train(endpoint=SHIPPED_ENDPOINT, kind=SHIPPED_KIND, cv_folds=5, progress=log)
