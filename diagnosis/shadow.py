"""Imaging models in shadow: the scans an inference job has just answered, run through the
shadow version on the same preprocessed frames (class, probabilities and its own scope
verdict; no heat-map is kept). Called after the job's results are committed."""

from __future__ import annotations

from typing import Any

from diagnosis.models import Prediction
from diagnosis.scope import GatedScans
from medai_site.registry.models import ModelVersion
from medai_site.registry.shadow import ShadowAnswer, ShadowItem, shadow_run

ITEM_TYPE = "diagnosis.prediction"
# The shadow's label for a scan its own detector finds unlike its training images.
OUTSIDE = "outside scope"
NOTE = (
    "Imaging: each scan the version in service classifies is run through the shadow on the "
    "same frames; agreement is on the predicted class (a scan the shadow's own detector "
    "flags counts as 'outside scope'). Scans outside the active version's scope are not "
    "compared."
)


def _score(version: ModelVersion, bundle: Any, items: list[ShadowItem]) -> list[ShadowAnswer]:
    from diagnosis.ml.predict import aggregate_series, predict

    frames = [frame for item in items for frame in item.payload]
    per_frame = predict(bundle, frames, heatmaps=False)
    answers, start = [], 0
    for item in items:
        series = aggregate_series(bundle, per_frame[start : start + len(item.payload)])
        start += len(item.payload)
        probabilities = {c: float(p) for c, p in zip(series.class_names, series.probabilities)}
        outside = series.in_scope is False
        answers.append(
            ShadowAnswer(
                label=OUTSIDE if outside else series.predicted_class,
                score=float(series.confidence),
                output={
                    "predicted_class": series.predicted_class,
                    "probabilities": probabilities,
                    "in_scope": series.in_scope,
                    "ood_score": series.ood_score,
                },
            )
        )
    return answers


def predictions_shadow_score(
    *, version: ModelVersion, stored: list[Prediction], gated: GatedScans
) -> int:
    """Score the scans ``version`` (in service) just answered with every imaging shadow of its
    task on the same frames; returns how many shadow answers were stored. Never raises."""
    from diagnosis.artifacts import load_bundle

    frames = {scan.pk: gated.images[start:stop] for scan, start, stop in gated.spans}
    items = [
        ShadowItem(
            item_type=ITEM_TYPE,
            item_id=str(p.pk),
            active_label=p.predicted_class,
            active_score=p.confidence,
            active_output={"predicted_class": p.predicted_class, "probabilities": p.probabilities},
            payload=frames[p.scan_id],
        )
        for p in stored
        if p.scored and p.scan_id in frames
    ]
    return shadow_run(
        task=version.task, active_version=version, items=items, load=load_bundle, score=_score
    )
