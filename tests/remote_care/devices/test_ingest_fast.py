"""The API's fast validation path never accepts what the serializer refuses, and gives the
same values for what it accepts (the serializer stays the source of every error message)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from remote_care.devices.serializers import RANGES, ObservationSerializer, observation_fast

NOW = datetime.now(UTC)


def _random_value(rng: random.Random, name: str):
    choices = {
        "taken_at": [
            (NOW - timedelta(minutes=rng.randint(0, 10_000))).isoformat(),
            (NOW - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            (NOW - timedelta(minutes=5)).replace(tzinfo=None).isoformat(),  # naive
            (NOW + timedelta(days=2)).isoformat(),  # future
            "yesterday",
            20260101,
            None,
            "2026-02-30T10:00:00Z",
        ],
        "consciousness": ["A", "C", "V", "P", "U", "", "a", "X", None, 1],
        "on_oxygen": [True, False, None, "true", 1, 0, "no"],
    }
    if name in choices:
        # Mostly plausible values, so that many items are valid and both paths are exercised.
        return choices[name][0] if rng.random() < 0.7 else rng.choice(choices[name])
    if rng.random() < 0.8:
        low, high, _ = RANGES[name]
        return rng.choice([rng.uniform(low, high), rng.randint(int(low) + 1, int(high) - 1)])
    return rng.choice(
        [rng.uniform(-50, 400), rng.randint(0, 320), None, "72", True, float("nan"), [], 80]
    )


FIELDS = (
    "taken_at",
    "heart_rate",
    "spo2",
    "respiratory_rate",
    "temperature",
    "systolic_bp",
    "diastolic_bp",
    "consciousness",
    "on_oxygen",
)


@pytest.mark.django_db
def test_fast_path_agrees_with_the_serializer_on_random_items():
    rng = random.Random(2026)
    accepted_fast = 0
    for _ in range(3000):
        item = {name: _random_value(rng, name) for name in FIELDS if rng.random() < 0.8}
        fast = observation_fast(item)
        serializer = ObservationSerializer(data=item)
        valid = serializer.is_valid()
        if fast is not None:
            accepted_fast += 1
            assert valid, (item, serializer.errors)
            assert fast == dict(serializer.validated_data), item
    assert accepted_fast > 50  # the generator does produce plainly valid items


@pytest.mark.django_db
@pytest.mark.parametrize(
    "item",
    [
        {"taken_at": (NOW - timedelta(minutes=1)).isoformat(), "heart_rate": 72},
        {"taken_at": (NOW - timedelta(minutes=1)).isoformat(), "consciousness": "V"},
        {"taken_at": (NOW - timedelta(minutes=1)).isoformat(), "on_oxygen": False},
        {
            "taken_at": (NOW - timedelta(minutes=1)).isoformat(),
            "systolic_bp": 120,
            "diastolic_bp": 80.5,
            "spo2": 100,
            "temperature": 45.0,
        },
    ],
)
def test_plain_items_take_the_fast_path(item):
    fast = observation_fast(item)
    serializer = ObservationSerializer(data=item)
    assert serializer.is_valid() and fast == dict(serializer.validated_data)


@pytest.mark.parametrize(
    "item",
    [
        {"taken_at": (NOW - timedelta(minutes=1)).isoformat()},  # no vital sign
        {
            "taken_at": (NOW - timedelta(minutes=1)).isoformat(),
            "systolic_bp": 80,
            "diastolic_bp": 90,
        },
        {"taken_at": (NOW - timedelta(minutes=1)).isoformat(), "heart_rate": "72"},
        {"heart_rate": 72},
        [],
    ],
)
def test_doubtful_items_go_to_the_serializer(item):
    assert observation_fast(item) is None
