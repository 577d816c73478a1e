"""FHIR R4 (R4B models of fhir.resources) for vital signs: read a device's Bundle of
Observations into observation sets, and export a patient's sets as a searchset Bundle.
Both directions are validated by the FHIR library, never by hand."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation as FhirObservation
from pydantic.v1 import ValidationError as FhirValidationError

from remote_care.models import Observation

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
BP_PANEL = "85354-9"
ACCEPTED_BUNDLE_TYPES = {"batch", "transaction", "collection"}
# LOINC code -> (our field, UCUM unit). 2708-6 (SpO2 by pulse oximetry, older code) is read only.
CODES: dict[str, tuple[str, str, str]] = {
    "8867-4": ("heart_rate", "/min", "Heart rate"),
    "59408-5": ("spo2", "%", "Oxygen saturation in Arterial blood by Pulse oximetry"),
    "9279-1": ("respiratory_rate", "/min", "Respiratory rate"),
    "8310-5": ("temperature", "Cel", "Body temperature"),
    "8480-6": ("systolic_bp", "mm[Hg]", "Systolic blood pressure"),
    "8462-4": ("diastolic_bp", "mm[Hg]", "Diastolic blood pressure"),
}
READ_ALIASES = {"2708-6": "59408-5"}
FIELD_CODES = {name: code for code, (name, _, _) in CODES.items()}
UNIT_SYNONYMS = {
    "/min": ("beats/min", "breaths/min", "{beats}/min", "{breaths}/min", "bpm"),
    "mm[Hg]": ("mmHg",),
    "Cel": ("°C", "degC"),
}
REFUSED_STATUSES = {"entered-in-error", "cancelled", "registered"}


class FhirInvalid(ValueError):
    """The payload is not a valid FHIR Bundle; the message is the library's (or ours)."""


@dataclass
class ParsedBundle:
    """Observation sets (``taken_at`` + vitals) with the entry indices each came from, and the
    entries refused with their reasons."""

    sets: list[dict[str, Any]] = field(default_factory=list)
    entries: list[list[int]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


def bundle_parse(data: Any) -> Bundle:
    """A library-validated Bundle of an accepted type; FhirInvalid with the library's message."""
    if not isinstance(data, dict):
        raise FhirInvalid("The body must be a FHIR Bundle (a JSON object).")
    try:
        bundle = Bundle.parse_obj(data)
    except FhirValidationError as exc:
        raise FhirInvalid(str(exc)) from None
    if bundle.type not in ACCEPTED_BUNDLE_TYPES:
        raise FhirInvalid(
            f"Bundle.type must be one of {', '.join(sorted(ACCEPTED_BUNDLE_TYPES))}; "
            f"got {bundle.type!r}."
        )
    return bundle


def _loinc_codes(concept: Any) -> list[str]:
    codings = (concept.coding or []) if concept is not None else []
    return [c.code for c in codings if c.system == LOINC and c.code]


def _quantity(quantity: Any, code: str) -> float:
    """The value of a Quantity in our unit; ValueError with the reason otherwise."""
    if quantity is None or quantity.value is None:
        raise ValueError("has no valueQuantity.value")
    _, unit, _ = CODES[code]
    given = quantity.code or quantity.unit
    if code == "8310-5" and given in {"[degF]", "degF", "°F"}:
        return round((float(quantity.value) - 32) * 5 / 9, 2)
    if given is not None and given != unit and given not in UNIT_SYNONYMS.get(unit, ()):
        raise ValueError(f"unit {given!r} is not {unit!r} (UCUM)")
    return float(quantity.value)


def _entry_values(resource: FhirObservation) -> dict[str, float]:
    """Our vitals from one Observation; ValueError with the reason when it is not one we read."""
    if resource.status in REFUSED_STATUSES:
        raise ValueError(f"status {resource.status!r} is not a result")
    codes = [READ_ALIASES.get(c, c) for c in _loinc_codes(resource.code)]
    if BP_PANEL in codes:
        values: dict[str, float] = {}
        for component in resource.component or []:
            known = [c for c in _loinc_codes(component.code) if c in {"8480-6", "8462-4"}]
            if known:
                values[CODES[known[0]][0]] = _quantity(component.valueQuantity, known[0])
        if not values:
            raise ValueError("BP panel 85354-9 has no 8480-6/8462-4 component")
        return values
    known = [c for c in codes if c in CODES]
    if not known:
        shown = ", ".join(_loinc_codes(resource.code)) or "none"
        raise ValueError(
            f"unknown LOINC code ({shown}); accepted: {', '.join([*CODES, '2708-6', BP_PANEL])}"
        )
    return {CODES[known[0]][0]: _quantity(resource.valueQuantity, known[0])}


def bundle_observation_sets(bundle: Bundle) -> ParsedBundle:
    """Group the Bundle's vital-sign Observations by effectiveDateTime into observation sets;
    entries that are not readable vital signs (or conflict within a set) are rejected."""
    parsed = ParsedBundle()
    by_time: dict[datetime, int] = {}
    for index, entry in enumerate(bundle.entry or []):
        resource = entry.resource
        try:
            if resource is None or resource.resource_type != "Observation":
                raise ValueError("is not an Observation")
            taken_at = resource.effectiveDateTime
            if not isinstance(taken_at, datetime) or taken_at.tzinfo is None:
                raise ValueError("needs an effectiveDateTime with a time and a time zone")
            values = _entry_values(resource)
        except ValueError as exc:
            parsed.rejected.append({"entry": index, "errors": [str(exc)]})
            continue
        position = by_time.get(taken_at)
        if position is None:
            by_time[taken_at] = position = len(parsed.sets)
            parsed.sets.append({"taken_at": taken_at})
            parsed.entries.append([])
        clash = [
            k
            for k, v in values.items()
            if k in parsed.sets[position] and parsed.sets[position][k] != v
        ]
        if clash:
            parsed.rejected.append(
                {"entry": index, "errors": [f"a different {clash[0]} at the same time"]}
            )
            continue
        parsed.sets[position].update(values)
        parsed.entries[position].append(index)
    return parsed


def _quantity_json(name: str, value: float) -> dict[str, Any]:
    code = FIELD_CODES[name]
    unit = CODES[code][1]
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _concept(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display}


VITAL_SIGNS_CATEGORY = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs",
                "display": "Vital Signs",
            }
        ]
    }
]


def _observation_resources(observation: Observation, subject: str) -> list[dict[str, Any]]:
    base = {
        "resourceType": "Observation",
        "status": "final",
        "category": VITAL_SIGNS_CATEGORY,
        "subject": {"reference": subject},
        "effectiveDateTime": observation.taken_at.isoformat(),
    }
    out = []
    for name in ("heart_rate", "spo2", "respiratory_rate", "temperature"):
        value = getattr(observation, name)
        if value is not None:
            code = FIELD_CODES[name]
            out.append(
                {
                    **base,
                    "id": f"obs-{observation.pk}-{code}",
                    "code": _concept(code, CODES[code][2]),
                    "valueQuantity": _quantity_json(name, value),
                }
            )
    components = [
        {
            "code": _concept(FIELD_CODES[name], CODES[FIELD_CODES[name]][2]),
            "valueQuantity": _quantity_json(name, getattr(observation, name)),
        }
        for name in ("systolic_bp", "diastolic_bp")
        if getattr(observation, name) is not None
    ]
    if components:
        out.append(
            {
                **base,
                "id": f"obs-{observation.pk}-{BP_PANEL}",
                "code": _concept(BP_PANEL, "Blood pressure panel with all children optional"),
                "component": components,
            }
        )
    return out


def bundle_export(*, patient: Any, observations: Iterable[Observation]) -> dict[str, Any]:
    """A searchset Bundle (JSON-ready, validated by the library) of the patient's vitals."""
    subject = f"Patient/{patient.pk}"
    entries = [
        {
            "fullUrl": f"urn:medai:observation:{resource['id']}",
            "resource": resource,
            "search": {"mode": "match"},
        }
        for observation in observations
        for resource in _observation_resources(observation, subject)
    ]
    bundle = Bundle.parse_obj(
        {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}
    )
    return json.loads(bundle.json())
