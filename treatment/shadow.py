"""Treatment models in shadow: a patient's question the version in service has just answered
(the same inputs and horizon), answered again by the shadow model. Agreement is on the
recommended arm; each arm's estimate is kept for the comparison."""

from __future__ import annotations

from typing import Any

from medai_site.registry.models import ModelVersion
from medai_site.registry.shadow import ShadowAnswer, ShadowItem, shadow_run
from treatment.ml.models import TreatmentModel

ITEM_TYPE = "treatment.assessment"
NOTE = (
    "Treatment options: each patient question the version in service answers (same inputs, "
    "same horizon) is answered by the shadow too; agreement is on the recommended arm, and "
    "the mean difference is that of the recommended arm's benefit. Clinicians record a plan, "
    "not a truth about the arms, so only agreement with the active version is shown."
)


def _arms(effect: dict[str, Any]) -> dict[str, float]:
    return {arm["label"]: arm["value"] for arm in effect.get("arms", [])}


def _score(version: ModelVersion, model: Any, items: list[ShadowItem]) -> list[ShadowAnswer]:
    from treatment.ml.effects import patient_effect

    answers = []
    for item in items:
        inputs, horizon = item.payload
        effect = patient_effect(model, inputs, horizon=horizon)
        answers.append(
            ShadowAnswer(
                label=effect.recommendation.label,
                score=float(effect.recommendation.benefit),
                output={
                    "recommended": effect.recommendation.label,
                    "benefit": effect.recommendation.benefit,
                    "arms": {arm.label: arm.value for arm in effect.arms},
                },
            )
        )
    return answers


def assessment_shadow_score(
    *, version: ModelVersion, assessment_id: int, result: dict[str, Any], inputs: Any, horizon: Any
) -> int:
    """Answer an assessment ``version`` (in service) has just stored with the running shadow
    of its trial's task; returns how many answers were stored (0 or 1). Never raises."""
    recommendation = result.get("recommendation") or {}
    item = ShadowItem(
        item_type=ITEM_TYPE,
        item_id=str(assessment_id),
        active_label=str(recommendation.get("label", "")),
        active_score=recommendation.get("benefit"),
        active_output={
            "recommended": recommendation.get("label"),
            "benefit": recommendation.get("benefit"),
            "arms": _arms(result),
        },
        payload=(inputs, horizon),
    )
    return shadow_run(
        task=version.task,
        active_version=version,
        items=[item],
        load=TreatmentModel.from_bytes,
        score=_score,
    )
