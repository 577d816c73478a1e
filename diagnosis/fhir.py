"""FHIR R4 (R4B models of fhir.resources) for imaging predictions: per prediction a
DiagnosticReport, its Observation(s) and a Provenance whose agents are the model version (a
Device) and, once reviewed, the reviewing clinician (by role and MedAI user id, not by name).
Bundles are validated by the library, never by hand.

Per prediction:
- Observation "model finding": the predicted class (SNOMED CT where MedAI knows the concept),
  with components for each class probability, the decision threshold and the uncertainty.
  Outside the model's scope it has no value and no probabilities: dataAbsentReason
  not-performed, and the reason in a component and a note.
- Observation "clinician's reading", when a clinician reviewed the prediction.
- DiagnosticReport: preliminary until reviewed, then final; conclusion in words.
- Provenance: targets the report and observations; the scan is its source entity.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydicom.errors import InvalidDicomError

from diagnosis.imaging.sr import class_code
from diagnosis.models import Prediction, Scan
from diagnosis.reporting import prediction_facts, stored_target
from diagnosis.selectors import scan_list
from medai_site.registry.fhir import (
    DICOM_UID,
    collection_bundle,
    model_device_urn,
    provenance_resource,
    resource_id,
    resource_urn,
)

SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
MEDAI_CODES = "urn:medai:codes:diagnosis"
ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
REPORT_CATEGORY = "http://terminology.hl7.org/CodeSystem/v2-0074"


def _concept(name: str) -> dict[str, Any]:
    code = class_code(name)
    system = SNOMED if code.scheme_designator == "SCT" else MEDAI_CODES
    return {
        "coding": [{"system": system, "code": code.value, "display": code.meaning}],
        "text": name,
    }


def _medai(code: str, text: str) -> dict[str, Any]:
    return {"coding": [{"system": MEDAI_CODES, "code": code, "display": text}], "text": text}


def _ratio(value: float) -> dict[str, Any]:
    return {"value": round(float(value), 6), "unit": "1", "system": UCUM, "code": "1"}


def _finding(prediction: Prediction, subject: str, device: str, status: str) -> dict[str, Any]:
    facts = prediction_facts(prediction)
    scope_text = prediction.get_scope_display()
    components: list[dict[str, Any]] = [
        {"code": _medai("SCOPE", "Model scope assessment"), "valueString": scope_text}
    ]
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": status,
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": "imaging"}]}],
        "code": _medai("MODEL-FINDING", "Model finding"),
        "subject": {"reference": subject},
        "effectiveDateTime": prediction.created_at.isoformat(),
        "device": {"reference": device},
        "method": {"text": f"{facts.model.name} v{facts.model.version}"},
    }
    notes = []
    if facts.scope_reason:
        components.append(
            {
                "code": _medai("SCOPE-REASON", "Reason outside the model's scope"),
                "valueString": facts.scope_reason,
            }
        )
        notes.append(facts.scope_reason)
    if facts.override_reason:
        notes.append(f"Scored at a clinician's request: {facts.override_reason}")
    if facts.scored:
        resource["valueCodeableConcept"] = _concept(facts.predicted_class)
        for name in facts.class_names:
            if name in facts.probabilities:
                components.append(
                    {
                        "code": _medai("CLASS-PROB", f"Probability of {name}"),
                        "valueQuantity": _ratio(facts.probabilities[name]),
                    }
                )
        if facts.threshold is not None:
            components.append(
                {
                    "code": _medai("THRESHOLD", "Decision threshold"),
                    "valueQuantity": _ratio(facts.threshold),
                }
            )
        if facts.uncertainty is not None:
            components.append(
                {
                    "code": _medai("UNCERTAINTY", "Normalised predictive entropy"),
                    "valueQuantity": _ratio(facts.uncertainty),
                }
            )
    else:
        resource["dataAbsentReason"] = {"coding": [{"system": ABSENT, "code": "not-performed"}]}
    resource["component"] = components
    if notes:
        resource["note"] = [{"text": text} for text in notes]
    return resource


def _reading(prediction: Prediction, subject: str) -> dict[str, Any]:
    review = prediction.review
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": "imaging"}]}],
        "code": _medai("CLINICIAN-READING", "Clinician's reading"),
        "subject": {"reference": subject},
        "effectiveDateTime": review.reviewed_at.isoformat(),
        "valueCodeableConcept": _concept(review.label),
        "interpretation": [_medai(review.verdict.upper(), review.get_verdict_display())],
    }


def _conclusion(prediction: Prediction) -> str:
    version = prediction.model_version
    model = f"{version.task} v{version.version}"
    if not prediction.scored:
        said = f"Outside the scope of {model}; not scored. {prediction.scope_why}".strip()
    else:
        said = f"{model} predicted {prediction.predicted_class}."
        if prediction.overridden:
            said += " Scored at a clinician's request although outside the model's scope."
    review = getattr(prediction, "review", None)
    if review is None:
        return f"{said} Not reviewed by a clinician."
    if review.verdict == "accepted":
        return f"{said} Accepted by a clinician."
    return f"{said} Corrected by a clinician to {review.label}."


def _source_entity(scan: Scan) -> dict[str, Any]:
    """The scan the model read; a DICOM scan by its stored (de-identified) SOP Instance UID."""
    what: dict[str, Any] = {"display": f"MedAI scan {scan.pk} ({scan.get_kind_display()})"}
    if scan.kind == Scan.Kind.DICOM:
        try:
            sources = stored_target(scan).sources
        except (OSError, InvalidDicomError, AttributeError):
            # An unreadable stored file must not block the export of what the model said.
            sources = ()
        if sources:
            uid = f"urn:oid:{sources[0].sop_instance_uid}"
            what["identifier"] = {"system": DICOM_UID, "value": uid}
    return {"role": "source", "what": what}


def prediction_resources(prediction: Prediction) -> list[tuple[str, dict[str, Any]]]:
    """(fullUrl, resource) for the prediction's report, observations and provenance."""
    scan = prediction.scan
    subject = f"Patient/{scan.patient_id}"
    device = model_device_urn(prediction.model_version_id)
    review = getattr(prediction, "review", None)
    status = "preliminary" if review is None else "final"
    finding_urn = resource_urn("finding", prediction.pk)
    entries = [(finding_urn, _finding(prediction, subject, device, status))]
    if review is not None:
        entries.append(
            (resource_urn("reading", prediction.pk, review.pk), _reading(prediction, subject))
        )
    report_urn = resource_urn("report", prediction.pk)
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "status": status,
        "category": [{"coding": [{"system": REPORT_CATEGORY, "code": "RAD"}]}],
        "code": _medai("AI-IMAGING", "AI imaging classification"),
        "subject": {"reference": subject},
        "effectiveDateTime": prediction.created_at.isoformat(),
        "issued": (review.reviewed_at if review else prediction.created_at).isoformat(),
        "result": [{"reference": urn} for urn, _ in entries],
        "conclusion": _conclusion(prediction),
    }
    entries.insert(0, (report_urn, report))
    provenance = provenance_resource(
        targets=[urn for urn, _ in entries],
        recorded=review.reviewed_at if review else prediction.created_at,
        version_pk=prediction.model_version_id,
        verifier_id=review.reviewer_id if review is not None else None,
        entities=[_source_entity(scan)],
    )
    entries.append(
        (resource_urn("provenance", prediction.pk, review.pk if review else 0), provenance)
    )
    for urn, resource in entries:
        resource["id"] = resource_id(urn)
    return entries


def predictions_bundle(predictions: Iterable[Prediction]) -> dict[str, Any]:
    """A collection Bundle (JSON-ready, validated by the library) of the predictions' resources
    and one Device per model version."""
    listed = list(predictions)
    entries = [pair for prediction in listed for pair in prediction_resources(prediction)]
    return collection_bundle(entries, [p.model_version for p in listed])


def scan_predictions(*, scan: Scan) -> list[Prediction]:
    """The predictions of one scan (reached through scan_get, so already scoped), oldest first."""
    return _with_rows(Prediction.objects.filter(scan=scan))


def patient_predictions(*, user: Any, patient: Any) -> list[Prediction]:
    """The predictions of a patient's scans the user may see, oldest first."""
    scans = scan_list(user=user, patient=patient)
    return _with_rows(Prediction.objects.filter(scan__in=scans))


def _with_rows(predictions: Any) -> list[Prediction]:
    return list(
        predictions.select_related("scan__patient", "model_version", "review__reviewer").order_by(
            "created_at", "pk"
        )
    )
