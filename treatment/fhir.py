"""FHIR R4 (R4B models of fhir.resources) for treatment assessments: per assessment a
RiskAssessment and a Provenance whose author is the model version (a Device, as in every
MedAI export) and whose verifier, once a clinician recorded a plan from it, is that clinician.

Why RiskAssessment and not Observations: an assessment is a prediction of an outcome (for a
survival model, the event by the horizon) conditional on each treatment option, with the best
option as a mitigation; that is exactly RiskAssessment's prediction[].outcome /
probabilityDecimal / when[x] and mitigation, while an Observation records something measured.
One prediction per arm; the differences between arms with their intervals and the
recommendation go into mitigation and notes, in the words the page shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from medai_site.registry.fhir import (
    collection_bundle,
    model_device_urn,
    provenance_resource,
    resource_id,
    resource_urn,
)
from treatment.models import TreatmentAssessment

MEDAI_CODES = "urn:medai:codes:treatment"


def _when(result: dict[str, Any]) -> dict[str, Any]:
    horizon = result.get("horizon")
    if horizon is None:
        return {}
    unit = str(result.get("time_unit") or "days")
    return {"whenRange": {"high": {"value": round(float(horizon), 4), "unit": unit}}}


def _prediction(arm: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    outcome = str(result.get("outcome") or "outcome")
    value_name = str(result.get("value_name") or "value")
    found: dict[str, Any] = {
        "outcome": {"text": f"{outcome} under {arm['label']}"},
        "rationale": f"Predicted {value_name} {float(arm['value']):.4f} under {arm['label']}.",
        **_when(result),
    }
    probability = arm.get("event_probability")
    if probability is not None and 0.0 <= float(probability) <= 1.0:
        found["probabilityDecimal"] = round(float(probability), 6)
    return found


def _difference_note(diff: dict[str, Any], level: float) -> str:
    said = f"{diff['label']} vs {diff['versus_label']}: difference {float(diff['difference']):+.4f}"
    if diff.get("low") is not None and diff.get("high") is not None:
        said += f" ({100 * level:.0f}% interval {diff['low']:+.4f} to {diff['high']:+.4f})"
    return said


def _risk_assessment(assessment: TreatmentAssessment, subject: str) -> dict[str, Any]:
    result = assessment.result
    version = assessment.model_version
    assert version is not None  # only done assessments are exported, and those have one
    level = float(result.get("level") or 0.95)
    notes = [_difference_note(d, level) for d in result.get("differences", [])]
    if assessment.applicability.get("status") == "unlike":
        notes.append("The patient is unlike the patients of the trial the model learned from.")
    resource: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "status": "final",
        "code": {
            "coding": [
                {
                    "system": MEDAI_CODES,
                    "code": "TREATMENT-OPTIONS",
                    "display": "Predicted outcome under each treatment option",
                }
            ],
            "text": f"Treatment options ({assessment.trial})",
        },
        "method": {"text": f"{version.task} v{version.version} ({result.get('model_kind', '')})"},
        "subject": {"reference": subject},
        "occurrenceDateTime": assessment.created_at.isoformat(),
        "performer": {"reference": model_device_urn(version.pk)},
        "prediction": [_prediction(arm, result) for arm in result.get("arms", [])],
    }
    statement = result.get("recommendation", {}).get("statement")
    if statement:
        resource["mitigation"] = statement
    if notes:
        resource["note"] = [{"text": text} for text in notes]
    return resource


def assessment_resources(assessment: TreatmentAssessment) -> list[tuple[str, dict[str, Any]]]:
    """(fullUrl, resource) for a done assessment's RiskAssessment and its Provenance."""
    subject = f"Patient/{assessment.patient_id}"
    plans = sorted(assessment.plans.all(), key=lambda p: (p.created_at, p.pk))
    plan = plans[-1] if plans else None
    risk_urn = resource_urn("treatment-assessment", assessment.pk)
    provenance = provenance_resource(
        targets=[risk_urn],
        recorded=plan.created_at if plan else assessment.created_at,
        version_pk=assessment.model_version_id or 0,
        verifier_id=plan.created_by_id if plan else None,
    )
    entries = [
        (risk_urn, _risk_assessment(assessment, subject)),
        (resource_urn("treatment-provenance", assessment.pk, plan.pk if plan else 0), provenance),
    ]
    for urn, resource in entries:
        resource["id"] = resource_id(urn)
    return entries


def assessments_bundle(assessments: Iterable[TreatmentAssessment]) -> dict[str, Any]:
    """A validated collection Bundle of the done assessments' resources and one Device per
    model version behind them (pending assessments have no result and are left out)."""
    done = [
        a
        for a in assessments
        if a.status == TreatmentAssessment.Status.DONE and a.model_version is not None
    ]
    entries = [pair for assessment in done for pair in assessment_resources(assessment)]
    return collection_bundle(entries, [a.model_version for a in done if a.model_version])
