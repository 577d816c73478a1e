"""FHIR R4 (R4B models of fhir.resources) for vital signs: read a device's Bundle of
Observations into observation sets, and export a patient's sets as a searchset Bundle.
Both directions are validated by the FHIR library, never by hand."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.observation import Observation as FhirObservation
from pydantic.v1 import ValidationError as FhirValidationError

from remote_care.models import Device, Observation

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


@dataclass
class CheckedBundle:
    """A Bundle whose envelope the library accepted, its entries that it accepted (with their
    positions in the request), and those it refused, each with the library's reasons."""

    bundle: Bundle
    entries: list[tuple[int, BundleEntry]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


def _library_errors(exc: Exception) -> list[str]:
    """The library's complaints as ``path: message`` lines (non-finite numbers in words)."""
    if not isinstance(exc, FhirValidationError):
        return [f"is not valid FHIR ({type(exc).__name__}: {exc})"[:300]]
    out = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"] if part != "__root__")
        message = error["msg"]
        if error["type"] == "value_error.decimal.not_finite":
            message = "must be a finite number (not NaN or Infinity)"
        out.append(f"{path}: {message}" if path else message)
    return out


def bundle_parse(data: Any) -> CheckedBundle:
    """The Bundle checked by the library, entry by entry: one malformed entry is refused with
    its reasons and the others go on (as FHIR's batch semantics have it). FhirInvalid when the
    envelope itself is not a Bundle of an accepted type."""
    if not isinstance(data, dict):
        raise FhirInvalid("The body must be a FHIR Bundle (a JSON object).")
    raw_entries = data.get("entry")
    if raw_entries is not None and not isinstance(raw_entries, list):
        raise FhirInvalid("Bundle.entry must be a list of entries.")
    try:
        bundle = Bundle.parse_obj({**data, "entry": None})
    # The library is the validator of untrusted input, and on some malformed input it raises
    # LookupError, AttributeError or TypeError rather than its ValidationError: all are a 400.
    except Exception as exc:
        raise FhirInvalid("\n".join(_library_errors(exc))) from None
    if bundle.type not in ACCEPTED_BUNDLE_TYPES:
        raise FhirInvalid(
            f"Bundle.type must be one of {', '.join(sorted(ACCEPTED_BUNDLE_TYPES))}; "
            f"got {bundle.type!r}."
        )
    checked = CheckedBundle(bundle=bundle)
    for index, raw in enumerate(raw_entries or []):
        try:
            checked.entries.append((index, BundleEntry.parse_obj(raw)))
        except Exception as exc:  # (as above)
            checked.rejected.append({"entry": index, "errors": _library_errors(exc)})
    return checked


# How a device names its patient and itself in an Observation (README, "FHIR R4"): both are
# optional, since the token already binds the device to one patient; when given, they must
# name exactly that patient and device, or the entry is refused.
_REFERENCE = re.compile(r"(?P<type>[A-Za-z]+)/(?P<id>[A-Za-z0-9.\-]{1,64})")


def _reference_check(reference: Any, *, kind: str, fhir_id: str, identifier: str) -> None:
    """ValueError unless the Reference names ``kind/fhir_id`` or has ``identifier`` as its
    identifier.value (and nothing that contradicts either)."""
    role = "subject" if kind == "Patient" else "device"
    what = "the patient this device is registered to" if kind == "Patient" else "this device"
    contract = (
        f"'{kind}/{fhir_id}' or an identifier with value '{identifier}'"
        if kind == "Device"
        else f"'{kind}/<the patient's id>' or an identifier with the patient's MRN"
    )
    if reference.type is not None and reference.type != kind:
        raise ValueError(f"{role} must refer to a {kind}, not a {reference.type}")
    if reference.reference is None and reference.identifier is None:
        raise ValueError(f"{role} must give a reference or an identifier ({contract})")
    if reference.reference is not None:
        match = _REFERENCE.fullmatch(reference.reference)
        if match is None or match["type"] != kind:
            raise ValueError(f"{role} reference must be a relative '{kind}/<id>' reference")
        if match["id"] != fhir_id:
            raise ValueError(f"{role} {reference.reference} is not {what}")
    if reference.identifier is not None and reference.identifier.value != identifier:
        raise ValueError(f"{role} identifier is not {what} ({contract})")


def _loinc_codes(concept: Any) -> list[str]:
    codings = (concept.coding or []) if concept is not None else []
    return [c.code for c in codings if c.system == LOINC and c.code]


def _quantity(quantity: Any, code: str) -> float:
    """The value of a Quantity in our unit; ValueError with the reason otherwise."""
    if quantity is None or quantity.value is None:
        raise ValueError("has no valueQuantity.value")
    _, unit, _ = CODES[code]
    value = float(quantity.value)  # a finite Decimal past 1.8e308 (e.g. "1e400") is inf here
    if not math.isfinite(value):
        raise ValueError("valueQuantity.value must be a finite number (this one is too large)")
    given = quantity.code or quantity.unit
    if code == "8310-5" and given in {"[degF]", "degF", "°F"}:
        return round((value - 32) * 5 / 9, 2)
    if given is not None and given != unit and given not in UNIT_SYNONYMS.get(unit, ()):
        raise ValueError(f"unit {given!r} is not {unit!r} (UCUM)")
    return value


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


def bundle_observation_sets(checked: CheckedBundle, *, device: Device) -> ParsedBundle:
    """Group the Bundle's vital-sign Observations by effectiveDateTime into observation sets;
    entries that are not readable vital signs of the device's own patient taken by the device
    itself (or that conflict within a set) are rejected with their reasons."""
    parsed = ParsedBundle(rejected=list(checked.rejected))
    patient = device.patient
    by_time: dict[datetime, int] = {}
    for index, entry in checked.entries:
        resource = entry.resource
        try:
            if resource is None or resource.resource_type != "Observation":
                raise ValueError("is not an Observation")
            if resource.subject is not None:
                _reference_check(
                    resource.subject,
                    kind="Patient",
                    fhir_id=str(patient.pk),
                    identifier=patient.mrn,
                )
            if resource.device is not None:
                _reference_check(
                    resource.device,
                    kind="Device",
                    fhir_id=str(device.pk),
                    identifier=device.token_prefix,
                )
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
