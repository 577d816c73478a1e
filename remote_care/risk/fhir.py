"""FHIR R4 (R4B models of fhir.resources) for deterioration risk scores: per score a
RiskAssessment and a Provenance whose author is the model version (a Device, as in every
MedAI export) and whose source is the observation set the score was computed on.

Why RiskAssessment: the score is the model's probability of an outcome (the version's
training outcome, in-hospital death in PhysioNet 2012) given the readings so far, with the
version's operating points as a qualitative risk; RiskAssessment's prediction[] holds exactly
that, where an Observation would claim something was measured. A set the model refused (too
little data, a value outside its training ranges) has no prediction and says why in a note.
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
from remote_care.models import RiskScore
from remote_care.risk.services import version_cut_offs

MEDAI_CODES = "urn:medai:codes:remote-care"
RISK_PROBABILITY = "http://terminology.hl7.org/CodeSystem/risk-probability"
DEFAULT_OUTCOME = "in-hospital death"


def _qualitative(risk: float, cuts: dict[str, float] | None) -> dict[str, Any] | None:
    if cuts is None:
        return None
    code = "high" if risk >= cuts["high"] else "moderate" if risk >= cuts["elevated"] else "low"
    return {"coding": [{"system": RISK_PROBABILITY, "code": code}], "text": code}


def _risk_assessment(score: RiskScore, subject: str) -> dict[str, Any]:
    version = score.model_version
    outcome = str((version.training_data or {}).get("outcome") or DEFAULT_OUTCOME)
    resource: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "status": "final",
        "code": {
            "coding": [
                {
                    "system": MEDAI_CODES,
                    "code": "DETERIORATION-RISK",
                    "display": "Deterioration risk from vital signs",
                }
            ],
            "text": "Deterioration risk",
        },
        "method": {"text": f"{version.task} v{version.version}"},
        "subject": {"reference": subject},
        "occurrenceDateTime": score.taken_at.isoformat(),
        "performer": {"reference": model_device_urn(version.pk)},
    }
    notes = [f"Hours of the model's 48-hour window with data: {score.hours_observed}."]
    if score.risk is None:
        notes.insert(0, f"No risk given: {score.insufficient_reason or 'insufficient data'}.")
    else:
        prediction: dict[str, Any] = {
            "outcome": {"text": outcome},
            "probabilityDecimal": round(float(score.risk), 6),
        }
        qualitative = _qualitative(float(score.risk), version_cut_offs(version))
        if qualitative is not None:
            prediction["qualitativeRisk"] = qualitative
        resource["prediction"] = [prediction]
    resource["note"] = [{"text": text} for text in notes]
    return resource


def score_resources(score: RiskScore) -> list[tuple[str, dict[str, Any]]]:
    """(fullUrl, resource) for one score's RiskAssessment and its Provenance."""
    risk_urn = resource_urn("risk-score", score.pk)
    provenance = provenance_resource(
        targets=[risk_urn],
        recorded=score.computed_at,
        version_pk=score.model_version_id,
        entities=[
            {
                "role": "source",
                "what": {
                    "display": f"MedAI observation set {score.observation_id} "
                    f"taken {score.taken_at.isoformat()}"
                },
            }
        ],
    )
    entries = [
        (risk_urn, _risk_assessment(score, f"Patient/{score.patient_id}")),
        (resource_urn("risk-provenance", score.pk), provenance),
    ]
    for urn, resource in entries:
        resource["id"] = resource_id(urn)
    return entries


def scores_bundle(scores: Iterable[RiskScore]) -> dict[str, Any]:
    """A validated collection Bundle of the scores' resources and one Device per model
    version behind them."""
    listed = list(scores)
    entries = [pair for score in listed for pair in score_resources(score)]
    return collection_bundle(entries, [s.model_version for s in listed])
