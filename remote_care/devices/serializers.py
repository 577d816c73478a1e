"""Validation of what devices post: one observation set per item, every value checked
against physiological plausibility, with a message per field."""

from __future__ import annotations

import math
from datetime import datetime, tzinfo
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from remote_care.devices.services import OBSERVATIONS_FROM, observation_future_limit
from remote_care.models import Alert, Observation

# Plausible ranges for a living patient's measurement; outside them a value is a device or
# transmission error, not a reading to score. (Scoring extremes still fall inside.)
RANGES = {
    "heart_rate": (20, 300, "beats/min"),
    "spo2": (50, 100, "percent"),  # no "%": messages are %-formatted
    "respiratory_rate": (2, 80, "breaths/min"),
    "temperature": (25.0, 45.0, "°C"),
    "systolic_bp": (40, 300, "mmHg"),
    "diastolic_bp": (20, 200, "mmHg"),
}
LABELS = {
    "heart_rate": "Heart (pulse) rate",
    "spo2": "Oxygen saturation (SpO2)",
    "respiratory_rate": "Respiratory rate",
    "temperature": "Body temperature",
    "systolic_bp": "Systolic blood pressure",
    "diastolic_bp": "Diastolic blood pressure",
}
VITALS = tuple(RANGES) + ("consciousness", "on_oxygen")
MAX_BATCH = 10_000


class FiniteFloatField(serializers.FloatField):
    """A float that must be finite: ``float("NaN")`` and ``float("inf")`` parse, and NaN even
    passes min/max checks (every comparison with it is false), but no measurement is either,
    and NEWS2 scoring refuses them. Too-large integers get the same message, not a 500."""

    default_error_messages = {
        "non_finite": "must be a finite number (not NaN or Infinity)",
        "overflow": "must be a finite number (this one is too large)",
    }

    def to_internal_value(self, data: Any) -> float:
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("non_finite")
        return value


def _ranged(name: str) -> FiniteFloatField:
    low, high, unit = RANGES[name]
    message = f"must be between {low} and {high} {unit}"
    return FiniteFloatField(
        required=False,
        allow_null=True,
        min_value=low,
        max_value=high,
        help_text=f"{LABELS[name]} in {unit}, {low} to {high}; null or absent if not measured.",
        error_messages={"min_value": message, "max_value": message},
    )


def taken_at_check(value: datetime) -> datetime:
    """The device's timestamp, or a ValidationError when its clock cannot be right."""
    if value > observation_future_limit():
        raise serializers.ValidationError("is in the future")
    if value < OBSERVATIONS_FROM:
        raise serializers.ValidationError(
            f"is before {OBSERVATIONS_FROM:%Y-%m-%d}: is the device's clock set?"
        )
    return value


class AwareDateTimeField(serializers.DateTimeField):
    """A timestamp that must carry its time zone: a device's local wall-clock time without
    one is ambiguous (and wrong twice a year), so it is refused rather than guessed."""

    def enforce_timezone(self, value: Any) -> Any:
        if timezone.is_naive(value):
            raise serializers.ValidationError("needs a time zone (e.g. 2026-11-24T08:00:00Z)")
        return super().enforce_timezone(value)


class ObservationSerializer(serializers.Serializer):
    taken_at = AwareDateTimeField(
        help_text="When the device took the readings (ISO 8601 with a time zone)."
    )
    heart_rate = _ranged("heart_rate")
    spo2 = _ranged("spo2")
    respiratory_rate = _ranged("respiratory_rate")
    temperature = _ranged("temperature")
    systolic_bp = _ranged("systolic_bp")
    diastolic_bp = _ranged("diastolic_bp")
    consciousness = serializers.ChoiceField(
        choices=Observation.Consciousness.choices,
        required=False,
        allow_blank=True,
        help_text="Level of consciousness on the ACVPU scale: A alert, C new confusion, "
        "V responds to voice, P to pain, U unresponsive; empty if not assessed.",
        error_messages={"invalid_choice": "must be one of A, C, V, P, U (ACVPU)"},
    )
    on_oxygen = serializers.BooleanField(
        required=False,
        allow_null=True,
        help_text="Whether the patient is on supplemental oxygen (scores 2 in NEWS2).",
    )

    def validate_taken_at(self, value: Any) -> Any:
        return taken_at_check(value)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if not any(data.get(name) not in (None, "") for name in VITALS):
            raise serializers.ValidationError("contains no vital sign")
        systolic, diastolic = data.get("systolic_bp"), data.get("diastolic_bp")
        if systolic is not None and diastolic is not None and diastolic >= systolic:
            raise serializers.ValidationError(
                {"diastolic_bp": "must be lower than the systolic pressure"}
            )
        return data


_ACVPU = frozenset(value for value, _ in Observation.Consciousness.choices) | {""}


def observation_fast(
    item: Any, *, limit: datetime | None = None, zone: tzinfo | None = None
) -> dict[str, Any] | None:
    """The validated data of a plainly well-formed item, or None to send it through
    ObservationSerializer (which then gives the exact message per field).

    DRF's per-item validation costs about a millisecond; a device batch of 10,000 readings is
    almost all well-formed, so this accepts only what the serializer would certainly accept
    and produce the same values for (numbers in range, an ISO timestamp with a zone, an ACVPU
    letter, a boolean), and leaves every doubtful item to the serializer. ``limit`` (the
    future limit) and ``zone`` (the current time zone) may be given once for a whole batch.
    """
    if type(item) is not dict:
        return None
    raw_time = item.get("taken_at")
    if type(raw_time) is not str or len(raw_time) > 40:
        return None
    try:
        taken_at = datetime.fromisoformat(raw_time)
    except ValueError:
        return None
    if taken_at.tzinfo is None or not (
        OBSERVATIONS_FROM <= taken_at <= (limit or observation_future_limit())
    ):
        return None
    data: dict[str, Any] = {
        "taken_at": taken_at.astimezone(zone or timezone.get_current_timezone())
    }
    any_vital = False
    for name, (low, high, _) in RANGES.items():
        if name in item:
            value = item[name]
            if value is None:
                data[name] = None
                continue
            if type(value) is not int and type(value) is not float:  # bool, strings: full path
                return None
            try:
                number = float(value)
            except OverflowError:
                return None
            if not (low <= number <= high):  # also False for NaN
                return None
            data[name] = number
            any_vital = True
    if "consciousness" in item:
        letter = item["consciousness"]
        if type(letter) is not str or letter not in _ACVPU:
            return None
        data["consciousness"] = letter
        any_vital = any_vital or letter != ""
    if "on_oxygen" in item:
        flag = item["on_oxygen"]
        if flag is not None and type(flag) is not bool:
            return None
        data["on_oxygen"] = flag
        any_vital = any_vital or flag is not None
    systolic, diastolic = data.get("systolic_bp"), data.get("diastolic_bp")
    if not any_vital or (systolic is not None and diastolic is not None and diastolic >= systolic):
        return None
    return data


def observations_validate(
    items: list[Any],
) -> tuple[list[dict[str, Any]], list[int], list[dict[str, Any]]]:
    """One pass over a batch: (validated sets, their indices, rejected items with their
    messages per field as ``{"index", "errors"}``). Plainly valid items take the fast check;
    every other item gets ObservationSerializer's exact messages."""
    limit, zone = observation_future_limit(), timezone.get_current_timezone()
    valid: list[dict[str, Any]] = []
    valid_index: list[int] = []
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        fast = observation_fast(item, limit=limit, zone=zone)
        if fast is None:
            if not isinstance(item, dict):
                rejected.append({"index": index, "errors": {"non_field_errors": [_NOT_OBJECT]}})
                continue
            serializer = ObservationSerializer(data=item)
            if not serializer.is_valid():
                rejected.append({"index": index, "errors": serializer.errors})
                continue
            fast = dict(serializer.validated_data)
        valid.append(fast)
        valid_index.append(index)
    return valid, valid_index, rejected


_NOT_OBJECT = "must be a JSON object"


# ------------------------------------------------- the API's documented shapes (OpenAPI only)
# These describe requests and responses exactly for the schema (and so for fuzzers and vendors'
# generated clients); the views validate with the serializers above and the FHIR library.


class ObservationBatchSerializer(serializers.Serializer):
    observations = serializers.ListField(
        child=ObservationSerializer(),
        min_length=1,
        max_length=MAX_BATCH,
        help_text=f"1 to {MAX_BATCH:,} observation sets, each validated on its own.",
    )


class ErrorDetailSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What was wrong with the request, in words.")


class RejectedItemSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the item in the request (0-based).")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per field; 'non_field_errors' for the item as a whole.",
    )


class AlertRaisedSerializer(serializers.Serializer):
    level = serializers.ChoiceField(
        choices=Alert.Level.values,
        help_text="Single parameter scored 3, NEWS2 >= 5, NEWS2 >= 7, or a sustained rise.",
    )
    news2_total = serializers.IntegerField(min_value=0, max_value=20)
    reason = serializers.CharField()


class News2ScoreSerializer(serializers.Serializer):
    taken_at = serializers.DateTimeField()
    total = serializers.IntegerField(allow_null=True, help_text="NEWS2 total (0 to 20).")
    partial = serializers.BooleanField(help_text="True when some NEWS2 parameters were missing.")


class ObservationsResultSerializer(serializers.Serializer):
    stored = serializers.IntegerField(help_text="Observation sets stored by this request.")
    duplicates = serializers.ListField(
        child=serializers.IntegerField(), help_text="Indices of items already stored before."
    )
    rejected = RejectedItemSerializer(many=True)
    alerts = AlertRaisedSerializer(many=True)
    news2 = News2ScoreSerializer(many=True)


class WaveformAcceptedSerializer(serializers.Serializer):
    waveform = serializers.IntegerField(help_text="Id of the stored recording.")
    job = serializers.IntegerField(help_text="Id of its analysis job.")
    samples = serializers.IntegerField()
    duration_s = serializers.FloatField(help_text="Seconds.")


class FieldErrorsSerializer(serializers.Serializer):
    """``{"<field>": ["message", ...]}``: DRF's shape for a refused envelope."""

    samples = serializers.ListField(child=serializers.CharField(), required=False)
    kind = serializers.ListField(child=serializers.CharField(), required=False)
    sampling_rate = serializers.ListField(child=serializers.CharField(), required=False)
    started_at = serializers.ListField(child=serializers.CharField(), required=False)
    detail = serializers.CharField(required=False)


# FHIR R4: the parts of a Bundle of vital-sign Observations that the API reads. fhir.resources
# validates the rest of the resource as FHIR; these shapes only document it.
# FHIR's primitive types: a string is non-empty and starts with a printable character or
# ordinary white space; a code has no leading, trailing or double white space; a uri has none.
# (Written in ASCII classes: JSON Schema's and Python's notions of \s differ beyond ASCII.)
_FHIR_STRING = r"^[ -~\t\r\n]"
_FHIR_CODE = r"^[!-~]+( [!-~]+)*$"
_FHIR_URI = r"^[!-~]+$"


def _fhir_string(**kwargs: Any) -> serializers.RegexField:
    return serializers.RegexField(_FHIR_STRING, **kwargs)


_LOINC_READ = ["8867-4", "59408-5", "2708-6", "9279-1", "8310-5", "8480-6", "8462-4", "85354-9"]


class FhirCodingSerializer(serializers.Serializer):
    system = serializers.ChoiceField(choices=["http://loinc.org"])
    code = serializers.ChoiceField(
        choices=_LOINC_READ,
        help_text="8867-4 heart rate, 59408-5 or 2708-6 SpO2, 9279-1 respiratory rate, "
        "8310-5 body temperature, 8480-6 systolic / 8462-4 diastolic BP (components of the "
        "85354-9 BP panel, or on their own).",
    )
    display = _fhir_string(required=False)


class FhirCodeableConceptSerializer(serializers.Serializer):
    coding = serializers.ListField(child=FhirCodingSerializer(), min_length=1)
    text = _fhir_string(required=False)


class FhirQuantitySerializer(serializers.Serializer):
    value = FiniteFloatField(
        help_text="A finite number in the unit below, within the vital's plausible range: "
        "heart and respiratory rate /min, SpO2 %, temperature Cel (or [degF]), BP mm[Hg]."
    )
    unit = _fhir_string(required=False)
    system = serializers.ChoiceField(choices=["http://unitsofmeasure.org"], required=False)
    code = serializers.RegexField(
        _FHIR_CODE, required=False, help_text="UCUM: /min, %, Cel or [degF], mm[Hg]."
    )


class FhirComponentSerializer(serializers.Serializer):
    code = FhirCodeableConceptSerializer()
    valueQuantity = FhirQuantitySerializer()


class FhirIdentifierSerializer(serializers.Serializer):
    system = serializers.RegexField(_FHIR_URI, required=False)
    value = _fhir_string()


class FhirPatientReferenceSerializer(serializers.Serializer):
    reference = serializers.RegexField(
        r"^Patient/[A-Za-z0-9.\-]{1,64}$",
        required=False,
        help_text="Patient/<the patient's id in MedAI> (as in MedAI's FHIR export).",
    )
    identifier = FhirIdentifierSerializer(
        required=False, help_text="The patient's MRN as identifier.value."
    )
    type = serializers.ChoiceField(choices=["Patient"], required=False)


class FhirDeviceReferenceSerializer(serializers.Serializer):
    reference = serializers.RegexField(
        r"^Device/[A-Za-z0-9.\-]{1,64}$",
        required=False,
        help_text="Device/<the device's id>, shown when the device was registered.",
    )
    identifier = FhirIdentifierSerializer(
        required=False,
        help_text="The device's token prefix (the part after 'mdv_') as identifier.value.",
    )
    type = serializers.ChoiceField(choices=["Device"], required=False)


class FhirCategoryCodingSerializer(serializers.Serializer):
    system = serializers.RegexField(_FHIR_URI, required=False)
    code = serializers.RegexField(_FHIR_CODE, required=False)
    display = _fhir_string(required=False)


class FhirCategorySerializer(serializers.Serializer):
    coding = serializers.ListField(child=FhirCategoryCodingSerializer(), required=False)
    text = _fhir_string(required=False)


class FhirEntryRequestSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=["POST", "PUT"])
    url = serializers.RegexField(_FHIR_URI)


class FhirEntrySearchSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=["match", "include", "outcome"], required=False)


class FhirObservationSerializer(serializers.Serializer):
    resourceType = serializers.ChoiceField(choices=["Observation"])
    id = serializers.RegexField(r"^[A-Za-z0-9.\-]{1,64}$", required=False)
    category = serializers.ListField(
        child=FhirCategorySerializer(),
        required=False,
        help_text="e.g. the vital-signs category; not read.",
    )
    status = serializers.ChoiceField(
        choices=["final", "amended", "corrected", "preliminary"],
        help_text="entered-in-error, cancelled and registered are refused.",
    )
    code = FhirCodeableConceptSerializer()
    subject = FhirPatientReferenceSerializer(
        required=False,
        help_text="Optional (the token names the patient); when given it must be the "
        "device's own patient, or the entry is refused.",
    )
    device = FhirDeviceReferenceSerializer(
        required=False,
        help_text="Optional; when given it must be this device, or the entry is refused.",
    )
    effectiveDateTime = serializers.DateTimeField(
        help_text="When it was measured, with a time zone; entries of one time form one set."
    )
    valueQuantity = FhirQuantitySerializer(
        required=False, help_text="Required except for the BP panel 85354-9."
    )
    component = FhirComponentSerializer(
        many=True, required=False, help_text="The BP panel's 8480-6 and 8462-4 values."
    )


class FhirBundleEntrySerializer(serializers.Serializer):
    fullUrl = serializers.RegexField(_FHIR_URI, required=False)
    resource = FhirObservationSerializer()
    request = FhirEntryRequestSerializer(
        required=False, help_text="Bundle.entry.request of a batch or transaction; not read."
    )
    search = FhirEntrySearchSerializer(required=False, help_text="As in MedAI's export; not read.")


class FhirBundleSerializer(serializers.Serializer):
    resourceType = serializers.ChoiceField(choices=["Bundle"])
    id = serializers.RegexField(r"^[A-Za-z0-9.\-]{1,64}$", required=False)
    total = serializers.IntegerField(min_value=0, required=False)
    type = serializers.ChoiceField(choices=["batch", "transaction", "collection"])
    entry = serializers.ListField(
        child=FhirBundleEntrySerializer(),
        min_length=1,
        max_length=6 * MAX_BATCH,
        help_text=f"At most {6 * MAX_BATCH:,} entries and {MAX_BATCH:,} observation sets.",
    )


class FhirRejectedEntrySerializer(serializers.Serializer):
    entry = serializers.IntegerField(help_text="Position of the entry in Bundle.entry.")
    errors = serializers.JSONField(help_text="Messages: a list, or a list per field.")


class FhirResultSerializer(serializers.Serializer):
    sets = serializers.IntegerField(help_text="Valid observation sets in the Bundle.")
    stored = serializers.IntegerField()
    duplicates = serializers.ListField(
        child=serializers.IntegerField(), help_text="Entries already stored before."
    )
    rejected = FhirRejectedEntrySerializer(many=True)
    alerts = AlertRaisedSerializer(many=True)


class FhirInvalidSerializer(serializers.Serializer):
    detail = serializers.CharField()
    fhir_errors = serializers.CharField(required=False, help_text="The FHIR library's words.")
