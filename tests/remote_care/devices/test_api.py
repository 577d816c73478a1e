"""The device API: token auth scoped to one patient, per-item validation, idempotent
batches, NEWS2 on the server, alerts raised without any dashboard open, alert lifecycle."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from medai_site.audit.models import AuditEvent
from remote_care.devices.services import device_register, device_revoke
from remote_care.models import Alert, Observation
from remote_care.monitoring.services import alert_transition
from tests.platform.factories import patient_for

pytestmark = pytest.mark.django_db
URL = "/remote-care/api/v1/observations/"


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()


@pytest.fixture
def device(users):
    users.clinician_a.email = "a@hospital.example"
    users.clinician_a.save()
    patient = patient_for(users.clinician_a)
    return device_register(patient=patient, label="home kit", registered_by=users.clinician_a)


def post(token: str | None, body: object) -> object:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return Client().post(URL, body, content_type="application/json", **headers)


def vitals(minutes_ago: float, **overrides: object) -> dict:
    base = {
        "taken_at": (timezone.now() - timedelta(minutes=minutes_ago)).isoformat(),
        "heart_rate": 72,
        "spo2": 97,
        "respiratory_rate": 14,
        "temperature": 36.8,
        "systolic_bp": 125,
        "diastolic_bp": 80,
        "consciousness": "A",
        "on_oxygen": False,
    }
    return {**base, **overrides}


def test_requires_a_valid_device_token(device):
    assert post(None, vitals(1)).status_code == 401
    response = post("mdv_nothere_xxx", vitals(1))
    assert response.status_code == 401 and "Unknown or revoked" in response.json()["detail"]
    device_revoke(device=device.device, user=device.device.registered_by)
    assert post(device.token, vitals(1)).status_code == 401
    assert not Observation.objects.exists()


def test_token_writes_only_its_own_patient(device, users):
    other = device_register(
        patient=patient_for(users.clinician_b), label="b", registered_by=users.clinician_b
    )
    assert post(other.token, vitals(1)).status_code == 201
    assert Observation.objects.get().patient == other.device.patient
    # There is no way to name a patient in the payload: extra fields are ignored.
    response = post(other.token, vitals(2, patient=device.device.patient.pk))
    assert response.status_code == 201
    assert not Observation.objects.filter(patient=device.device.patient).exists()


def test_single_observation_is_scored_with_news2(device):
    response = post(device.token, vitals(1))
    assert response.status_code == 201
    body = response.json()
    assert body["stored"] == 1 and body["news2"][0]["total"] == 0 and not body["alerts"]
    observation = Observation.objects.get()
    assert observation.news2["sub_scores"]["pulse"]["score"] == 0


def test_batch_keeps_valid_items_and_rejects_others_per_field(device):
    batch = [
        vitals(5),
        vitals(4, spo2=140),
        vitals(3, heart_rate="fast"),
        vitals(2, consciousness="Z"),
        vitals(1, systolic_bp=90, diastolic_bp=95),
        {"taken_at": "2026-01-01T00:00:00"},
        "not an object",
    ]
    response = post(device.token, {"observations": batch})
    assert response.status_code == 201
    body = response.json()
    assert body["stored"] == 1
    errors = {item["index"]: item["errors"] for item in body["rejected"]}
    assert "between 50 and 100" in errors[1]["spo2"][0]
    assert "number" in errors[2]["heart_rate"][0].lower()
    assert "ACVPU" in errors[3]["consciousness"][0]
    assert "lower than the systolic" in errors[4]["diastolic_bp"][0]
    assert "time zone" in errors[5]["taken_at"][0]
    assert "JSON object" in errors[6]["non_field_errors"][0]


def test_all_invalid_is_a_400(device):
    response = post(device.token, {"observations": [vitals(1, temperature=60)]})
    assert response.status_code == 400 and response.json()["stored"] == 0
    assert post(device.token, {"observations": []}).status_code == 400


def test_resent_batch_stores_nothing_twice(device):
    batch = {"observations": [vitals(m) for m in (30, 20, 10)]}
    assert post(device.token, batch).json()["stored"] == 3
    again = post(device.token, batch)
    assert again.status_code == 200
    assert again.json()["stored"] == 0 and again.json()["duplicates"] == [0, 1, 2]
    assert Observation.objects.count() == 3


def test_thousands_per_request(device):
    now = timezone.now()
    batch = [
        {"taken_at": (now - timedelta(seconds=s)).isoformat(), "heart_rate": 70 + s % 5}
        for s in range(1, 3001)
    ]
    response = post(device.token, {"observations": batch})
    assert response.status_code == 201 and response.json()["stored"] == 3000
    assert Observation.objects.filter(news2_partial=True).count() == 3000


def test_deterioration_raises_alerts_server_side_with_cooldown_and_email(
    device, django_capture_on_commit_callbacks
):
    ok = vitals(60)
    urgent = vitals(40, respiratory_rate=22, spo2=94, heart_rate=105, temperature=38.4)
    emergency = vitals(
        20, respiratory_rate=26, spo2=91, heart_rate=125, systolic_bp=95, diastolic_bp=60
    )
    same = vitals(10, respiratory_rate=26, spo2=91, heart_rate=125, systolic_bp=95, diastolic_bp=60)
    with django_capture_on_commit_callbacks(execute=True):
        body = post(device.token, {"observations": [ok, urgent]}).json()
    assert [a["level"] for a in body["alerts"]] == ["URGENT"]
    with django_capture_on_commit_callbacks(execute=True):
        body = post(device.token, {"observations": [emergency]}).json()
    assert [a["level"] for a in body["alerts"]] == ["EMERGENCY"]
    with django_capture_on_commit_callbacks(execute=True):
        body = post(device.token, {"observations": [same]}).json()
    assert body["alerts"] == []  # one episode, one alert
    assert Alert.objects.count() == 2
    assert len(mail.outbox) == 2  # the cooled-down third set sent nothing
    assert "(emergency)" in mail.outbox[1].subject and "(urgent)" in mail.outbox[0].subject
    assert mail.outbox[0].to == ["a@hospital.example"]
    # No identifier in any alert mail (subjects show on lock screens and in mail logs).
    patient = Alert.objects.first().patient
    for message in mail.outbox:
        for identifier in (patient.mrn, patient.given_name, patient.family_name):
            assert identifier not in message.subject and identifier not in message.body


def test_alert_lifecycle_is_audited(device, users):
    post(device.token, {"observations": [vitals(5, respiratory_rate=30)]})
    alert = Alert.objects.get()
    assert alert.level == "RED_SCORE"
    alert = alert_transition(alert=alert, action="acknowledge", user=users.clinician_a)
    assert alert.status == "acknowledged" and alert.acknowledged_by == users.clinician_a
    alert = alert_transition(alert=alert, action="escalate", user=users.clinician_a)
    alert = alert_transition(alert=alert, action="resolve", user=users.clinician_a)
    assert alert.status == "resolved"
    with pytest.raises(ValueError, match="cannot be acknowledged"):
        alert_transition(alert=alert, action="acknowledge", user=users.clinician_a)
    actions = AuditEvent.objects.filter(object_type="remote_care.Alert").values_list(
        "detail__alert", flat=True
    )
    assert sorted(actions) == ["acknowledge", "escalate", "resolve"]


def test_device_requests_are_throttled(device, settings):
    settings.MEDAI_DEVICE_RATE_LIMIT = "3/min"
    codes = [post(device.token, vitals(10 + i)).status_code for i in range(5)]
    assert codes[:3] == [201, 201, 201] and codes[3] == 429


def post_raw(token: str, text: str) -> object:
    """Post JSON text as written (NaN literals and huge numbers survive no serialiser)."""
    return Client().post(
        URL, text, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def test_non_finite_numbers_are_refused_per_item_and_the_rest_stored(device):
    import json

    items = [json.dumps(vitals(1))]
    for minutes, value in enumerate(['"NaN"', '"Infinity"', '"-inf"', "NaN", "-Infinity", "1e400"]):
        items.append(
            json.dumps(vitals(2 + minutes, heart_rate=0)).replace(
                '"heart_rate": 0', f'"heart_rate": {value}'
            )
        )
    items.append(json.dumps(vitals(20, spo2=0)).replace('"spo2": 0', '"spo2": NaN'))
    items.append(json.dumps(vitals(21)))
    response = post_raw(device.token, '{"observations": [' + ", ".join(items) + "]}")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["stored"] == 2 and Observation.objects.count() == 2
    rejected = {r["index"]: r["errors"] for r in body["rejected"]}
    assert sorted(rejected) == [1, 2, 3, 4, 5, 6, 7]
    for index in range(1, 7):
        assert rejected[index] == {"heart_rate": ["must be a finite number (not NaN or Infinity)"]}
    assert rejected[7] == {"spo2": ["must be a finite number (not NaN or Infinity)"]}
    # The valid readings were scored (and could alert) as usual.
    assert all(o.news2_total is not None for o in Observation.objects.all())


def test_huge_integers_are_refused_per_item_with_a_message(device):
    import json

    good = json.dumps(vitals(1))
    hundreds = json.dumps(vitals(2, heart_rate=0)).replace(
        '"heart_rate": 0', '"heart_rate": ' + "9" * 400
    )
    thousands = json.dumps(vitals(3, systolic_bp=0)).replace(
        '"systolic_bp": 0', '"systolic_bp": -' + "7" * 5000
    )
    response = post_raw(
        device.token, '{"observations": [' + f"{good}, {hundreds}, {thousands}" + "]}"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["stored"] == 1
    assert [r["index"] for r in body["rejected"]] == [1, 2]
    assert "finite number" in body["rejected"][0]["errors"]["heart_rate"][0]
    assert "finite number" in body["rejected"][1]["errors"]["systolic_bp"][0]
    alone = post_raw(
        device.token,
        json.dumps(vitals(4, heart_rate=0)).replace(
            '"heart_rate": 0', '"heart_rate": ' + "1" * 9000
        ),
    )
    assert alone.status_code == 400 and alone.json()["rejected"][0]["index"] == 0


def test_json_nested_too_deeply_is_a_400(device):
    response = post_raw(device.token, "[" * 100_000 + "]" * 100_000)
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]


def test_rate_limit_is_a_setting_and_can_be_turned_off(device, settings):
    settings.MEDAI_DEVICE_RATE_LIMIT = "1/min"
    assert post(device.token, vitals(1)).status_code == 201
    limited = post(device.token, vitals(2))
    assert limited.status_code == 429 and "throttled" in limited.json()["detail"]
    settings.MEDAI_DEVICE_RATE_LIMIT = None
    assert [post(device.token, vitals(3 + i)).status_code for i in range(3)] == [201] * 3


def test_readings_from_an_unset_clock_are_refused(device):
    response = post(
        device.token,
        {
            "observations": [
                vitals(1),
                {**vitals(1), "taken_at": "1970-01-01T00:00:12Z"},
                {**vitals(1), "taken_at": "0547-04-05T01:48:25Z"},
            ]
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["stored"] == 1
    assert [r["index"] for r in body["rejected"]] == [1, 2]
    assert "is the device's clock set?" in body["rejected"][0]["errors"]["taken_at"][0]


def test_bad_json_is_a_400_with_the_parsers_message(device):
    broken = post_raw(device.token, '{"observations": [')
    assert broken.status_code == 400
    assert broken.json()["detail"].startswith("JSON parse error - Expecting value: line 1")
    not_utf8 = Client().post(
        URL,
        b'{"heart_rate": "\xff"}',
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {device.token}",
    )
    assert not_utf8.status_code == 400
    assert "can't decode byte 0xff" in not_utf8.json()["detail"]


def test_a_huge_integer_in_a_utf16_body_is_refused_per_item(device):
    # UTF-16 is searched for long digit runs as text, not as bytes; 5,000 digits are past
    # the int() limit, so a missed run would fail the whole batch as a JSON parse error.
    import json

    text = json.dumps(vitals(1, heart_rate=0)).replace(
        '"heart_rate": 0', '"heart_rate": ' + "9" * 5000
    )
    response = Client().post(
        URL,
        text,  # the client encodes it in the charset named
        content_type="application/json; charset=utf-16",
        HTTP_AUTHORIZATION=f"Bearer {device.token}",
    )
    assert response.status_code == 400, response.content
    assert "finite number" in response.json()["rejected"][0]["errors"]["heart_rate"][0]
