"""Clinician pages for remote monitoring: device registration (token shown once), revoke,
alert actions, patient scoping."""

from __future__ import annotations

import pytest
from django.utils import timezone

from remote_care.devices.services import device_authenticate, device_register
from remote_care.models import Device, Observation
from tests.platform.factories import patient_for
from tests.remote_care.factories import AlertFactory, ObservationFactory

pytestmark = pytest.mark.django_db


def test_register_device_shows_its_token_once(users, client_for):
    patient = patient_for(users.clinician_a)
    client = client_for(users.clinician_a)
    response = client.post(f"/remote-care/patients/{patient.pk}/", {"label": "Oximeter"})
    assert response.status_code == 201
    html = response.content.decode()
    device = Device.objects.get()
    token = html.split('<code class="token">')[1].split("</code>")[0]
    assert device_authenticate(token) == device
    # The FHIR references the device must use (README: FHIR R4) are shown with the token.
    assert (
        f"<code>Device/{device.pk}</code>" in html and f"<code>Patient/{patient.pk}</code>" in html
    )
    assert token not in client.get(f"/remote-care/patients/{patient.pk}/").content.decode()
    assert client.post(f"/remote-care/patients/{patient.pk}/", {"label": ""}).status_code == 400
    assert "Remote monitoring" in client.get(f"/patients/{patient.pk}/").content.decode()


def test_revoke_and_alert_actions(users, client_for):
    patient = patient_for(users.clinician_a)
    issued = device_register(patient=patient, label="kit", registered_by=users.clinician_a)
    observation = ObservationFactory(device=issued.device, heart_rate=140)
    alert = AlertFactory(observation=observation, news2_total=3, reason="pulse 140")
    client = client_for(users.clinician_a)
    assert client.post(f"/remote-care/alerts/{alert.pk}/", {"action": "delete"}).status_code == 400
    client.post(f"/remote-care/alerts/{alert.pk}/", {"action": "acknowledge"})
    alert.refresh_from_db()
    assert alert.status == "acknowledged" and alert.acknowledged_by == users.clinician_a
    client.post(f"/remote-care/devices/{issued.device.pk}/revoke/")
    assert device_authenticate(issued.token) is None
    other = client_for(users.clinician_b)
    assert other.get(f"/remote-care/patients/{patient.pk}/").status_code == 404
    assert other.post(f"/remote-care/alerts/{alert.pk}/", {"action": "resolve"}).status_code == 404


def test_monitoring_page_reads_a_weeks_readings_in_a_fixed_number_of_queries(users, client_for):
    # Found by bench/load.py: the NEWS2 history chart re-read each reading's patient with a
    # query of its own, so the page slowed with every reading stored.
    from datetime import timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    patient = patient_for(users.clinician_a)
    issued = device_register(patient=patient, label="kit", registered_by=users.clinician_a)
    client = client_for(users.clinician_a)
    url = f"/remote-care/patients/{patient.pk}/"

    def queries_with(readings: int) -> int:
        Observation.objects.bulk_create(
            Observation(
                patient=patient,
                device=issued.device,
                taken_at=timezone.now() - timedelta(hours=1, minutes=15 * k),
                heart_rate=80,
                news2_total=1,
            )
            for k in range(Observation.objects.count(), readings)
        )
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured.captured_queries)

    assert queries_with(60) == queries_with(5 * 60)
