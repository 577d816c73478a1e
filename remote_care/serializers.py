"""Validation of what devices post: one observation set per item, every value checked
against physiological plausibility, with a message per field."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from remote_care.models import Observation
from remote_care.services import observation_future_limit

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
VITALS = tuple(RANGES) + ("consciousness", "on_oxygen")
MAX_BATCH = 10_000


class FiniteFloatField(serializers.FloatField):
    """A FloatField for JSON numbers of any size: DRF's lets float()'s OverflowError (an
    integer of hundreds of digits) escape as a 500, and takes 1e400 as infinity."""

    def to_internal_value(self, data: Any) -> float:
        try:
            value = super().to_internal_value(data)
        except OverflowError:
            self.fail("invalid")
        if not math.isfinite(value):
            self.fail("invalid")
        return value


def _ranged(name: str) -> serializers.FloatField:
    low, high, unit = RANGES[name]
    message = f"must be between {low} and {high} {unit}"
    return FiniteFloatField(
        required=False,
        allow_null=True,
        min_value=low,
        max_value=high,
        error_messages={"min_value": message, "max_value": message},
    )


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
        error_messages={"invalid_choice": "must be one of A, C, V, P, U (ACVPU)"},
    )
    on_oxygen = serializers.BooleanField(required=False, allow_null=True)

    def validate_taken_at(self, value: Any) -> Any:
        if value > observation_future_limit():
            raise serializers.ValidationError("is in the future")
        return value

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


def _number(value: Any, name: str) -> float | None:
    low, high, _ = RANGES[name]
    if type(value) not in (int, float):  # bool and numeric strings take the full path
        raise ValueError
    number = float(value)
    if not (low <= number <= high):  # also False for NaN
        raise ValueError
    return number


def observation_fast(item: Any) -> dict[str, Any] | None:
    """The validated data of a plainly well-formed item, or None to send it through
    ObservationSerializer (which then gives the exact message per field).

    DRF's per-item validation costs about a millisecond; a device batch of 10,000 readings is
    almost all well-formed, so this accepts only what the serializer would certainly accept
    and produce the same values for (numbers in range, an ISO timestamp with a zone, an ACVPU
    letter, a boolean), and leaves every doubtful item to the serializer.
    """
    if type(item) is not dict:
        return None
    try:
        raw_time = item["taken_at"]
        if type(raw_time) is not str or len(raw_time) > 40:
            return None
        taken_at = datetime.fromisoformat(raw_time)
        if taken_at.tzinfo is None or taken_at > observation_future_limit():
            return None
        data: dict[str, Any] = {"taken_at": timezone.localtime(taken_at)}
        any_vital = False
        for name in RANGES:
            if name in item:
                value = item[name]
                data[name] = None if value is None else _number(value, name)
                any_vital = any_vital or value is not None
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
    except (KeyError, ValueError, OverflowError):
        return None
    systolic, diastolic = data.get("systolic_bp"), data.get("diastolic_bp")
    if not any_vital or (systolic is not None and diastolic is not None and diastolic >= systolic):
        return None
    return data
