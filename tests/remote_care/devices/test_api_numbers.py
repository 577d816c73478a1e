"""JSON numbers a float cannot hold (an integer of hundreds of digits, 1e400) in the device
API are a 400 naming the field, never an OverflowError 500."""

from __future__ import annotations

import pytest
from django.test import Client

from remote_care.devices.services import device_register
from tests.platform.factories import patient_for

pytestmark = pytest.mark.django_db

HUGE = "9" * 400


@pytest.mark.parametrize(
    "body",
    [
        '{"kind": "ecg", "sampling_rate": 250, "started_at": "2026-01-01T00:00:00Z", '
        f'"samples": [{",".join([HUGE] * 2600)}]}}',
        '{"kind": "ecg", "sampling_rate": 1e400, "started_at": "2026-01-01T00:00:00Z", '
        f'"samples": [{",".join(["1"] * 2600)}]}}',
    ],
)
def test_waveform_numbers_beyond_a_float_are_a_400(users, body):
    patient = patient_for(users.clinician_a)
    token = device_register(patient=patient, label="kit", registered_by=users.clinician_a).token
    response = Client().post(
        "/remote-care/api/v1/waveforms/",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 400
    assert "sampl" in response.content.decode()
