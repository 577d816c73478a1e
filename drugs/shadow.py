"""Drug models in shadow. Property predictors: the molecules a design run has just stored
with the predictions of the predictors in service are predicted again by a shadow predictor.
The generator cannot run in shadow: a design run is its own generation, so there is no live
input both versions answer; its card compares the versions' recorded sample metrics instead."""

from __future__ import annotations

from typing import Any

from drugs.models import GeneratedMolecule
from medai_site.registry.models import ModelVersion
from medai_site.registry.shadow import ShadowAnswer, ShadowItem, shadow_run

ITEM_TYPE = "drugs.generatedmolecule"
PREDICTOR_NOTE = (
    "Property predictors: every molecule a design run stores with the predictions of the "
    "predictor in service is predicted by the shadow too. Agreement is on the side of 0.5 "
    "(classifiers: active / inactive) or the third of the training range (regressors: low / "
    "middle / high); the mean difference is of the predicted values. Researchers give no "
    "label, so only agreement with the active version is shown."
)
GENERATOR_NOTE = (
    "The molecule generator does not run in shadow: a design run is its own generation, so "
    "there is no live input that both versions answer and no answer to agree on. Compare "
    "instead the sample metrics each version recorded when it was trained (validity, "
    "uniqueness, novelty, FCD), shown side by side below, or start a sample run with it."
)


def predictor_label(model: Any, value: float | None) -> str:
    """What a prediction says in words a confusion table can count: for a classifier the side
    of 0.5, for a regressor the third of its own training range."""
    if value is None:
        return "no prediction"
    if getattr(model, "task", "") == "classification":
        return "active" if value >= 0.5 else "inactive"
    low, high = getattr(model, "y_range", (0.0, 1.0))
    share = (value - low) / (high - low) if high > low else 0.5
    return "low" if share < 1 / 3 else ("middle" if share < 2 / 3 else "high")


def _score(version: ModelVersion, model: Any, items: list[ShadowItem]) -> list[ShadowAnswer]:
    import math

    values = model.predict([item.payload for item in items])
    answers = []
    for value in values:
        number = float(value) if math.isfinite(float(value)) else None
        answers.append(
            ShadowAnswer(
                label=predictor_label(model, number), score=number, output={"value": number}
            )
        )
    return answers


def run_predictors_shadow_score(
    *, run_id: int, predictors: list[tuple[str, ModelVersion, Any]]
) -> int:
    """Predict the run's stored molecules with the running shadow of each predictor that
    scored them (``predictors``: endpoint, version in service, its model); returns how many
    answers were stored. Never raises."""
    from drugs.artifacts import load_predictor_bytes

    if not predictors:
        return 0
    rows = list(
        GeneratedMolecule.objects.filter(run_id=run_id).values_list("pk", "smiles", "predictions")
    )
    stored = 0
    for endpoint, version, model in predictors:
        items = [
            ShadowItem(
                item_type=ITEM_TYPE,
                item_id=str(pk),
                active_label=predictor_label(model, (predictions or {}).get(endpoint)),
                active_score=(predictions or {}).get(endpoint),
                active_output={"value": (predictions or {}).get(endpoint)},
                payload=smiles,
            )
            for pk, smiles, predictions in rows
        ]
        stored += shadow_run(
            task=version.task,
            active_version=version,
            items=items,
            load=load_predictor_bytes,
            score=_score,
        )
    return stored
