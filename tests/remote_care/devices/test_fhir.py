"""FHIR R4: devices post Bundles of vital-sign Observations (validated by fhir.resources);
clinicians export a patient's sets as a searchset Bundle that posts back unchanged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from medai_site.audit.models import AuditEvent
from remote_care.devices.services import device_register, observations_ingest
from remote_care.models import Observation
from tests.platform.factories import patient_for

pytestmark = pytest.mark.django_db
URL = "/remote-care/api/v1/fhir/Bundle/"
FIELDS = ("heart_rate", "spo2", "respiratory_rate", "temperature", "systolic_bp", "diastolic_bp")


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()


@pytest.fixture
def patient(users):
    return patient_for(users.clinician_a)


def register(patient, user, label="kit"):
    return device_register(patient=patient, label=label, registered_by=user)


def post(token: str, body: object, content_type: str = "application/fhir+json"):
    return Client().post(URL, body, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {token}")


def observation(code: str, value: float, when: str, unit: str = "/min", **extra) -> dict:
    return {
        "resource": {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "effectiveDateTime": when,
            "valueQuantity": {
                "value": value,
                "unit": unit,
                "system": "http://unitsofmeasure.org",
                "code": unit,
            },
            **extra,
        }
    }


def bundle(*entries: dict, kind: str = "batch") -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def test_bundle_is_grouped_into_sets_and_scored(patient, users):
    issued = register(patient, users.clinician_a)
    t1 = (timezone.now() - timedelta(minutes=10)).isoformat()
    t2 = (timezone.now() - timedelta(minutes=5)).isoformat()
    panel = {
        "resource": {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "effectiveDateTime": t1,
            "component": [
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                    "valueQuantity": {"value": 128, "code": "mm[Hg]"},
                },
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                    "valueQuantity": {"value": 82, "code": "mm[Hg]"},
                },
            ],
        }
    }
    response = post(
        issued.token,
        bundle(
            observation("8867-4", 76, t1),
            observation("2708-6", 96, t1, unit="%"),
            observation("9279-1", 15, t1),
            observation("8310-5", 37.1, t1, unit="Cel"),
            panel,
            observation("8867-4", 80, t2),
        ),
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["sets"] == 2 and body["stored"] == 2 and body["rejected"] == []
    first, second = Observation.objects.order_by("taken_at")
    assert (first.heart_rate, first.spo2, first.respiratory_rate) == (76, 96, 15)
    assert (first.temperature, first.systolic_bp, first.diastolic_bp) == (37.1, 128, 82)
    assert first.news2_total is not None and second.heart_rate == 80
    # Resent: nothing stored twice, every entry reported as a duplicate.
    again = post(issued.token, bundle(observation("8867-4", 80, t2)))
    assert again.status_code == 200 and again.json()["duplicates"] == [0]


def test_invalid_bundle_is_refused_with_the_library_message(patient, users):
    issued = register(patient, users.clinician_a)
    broken = bundle(observation("8867-4", 70, timezone.now().isoformat()))
    del broken["entry"][0]["resource"]["status"]  # required by FHIR
    response = post(issued.token, broken)
    # A malformed entry is refused on its own, with the library's message.
    assert response.status_code == 400
    (rejected,) = response.json()["rejected"]
    assert rejected["entry"] == 0
    assert "resource.status: field required" in rejected["errors"]
    not_bundle = post(issued.token, {"resourceType": "Patient"}, "application/json")
    assert not_bundle.status_code == 400 and "Bundle" in not_bundle.json()["fhir_errors"]
    wrong_type = post(issued.token, bundle(kind="searchset"))
    assert wrong_type.status_code == 400 and "batch" in wrong_type.json()["fhir_errors"]
    assert not Observation.objects.exists()
    assert Client().post(URL, bundle(), content_type="application/json").status_code == 401


def test_unknown_code_and_bad_entries_are_reported_per_entry(patient, users):
    issued = register(patient, users.clinician_a)
    when = (timezone.now() - timedelta(minutes=1)).isoformat()
    response = post(
        issued.token,
        bundle(
            observation("8867-4", 70, when),
            observation("2339-0", 5.4, when, unit="mmol/L"),  # glucose: not a vital we read
            observation("9279-1", 14, "2026-11-24"),  # a date without a time
            observation(
                "8480-6", 999, (timezone.now() - timedelta(minutes=2)).isoformat(), unit="mm[Hg]"
            ),
        ),
    )
    assert response.status_code == 201
    rejected = {r["entry"]: r["errors"] for r in response.json()["rejected"]}
    assert set(rejected) == {1, 2, 3}
    assert "unknown LOINC code (2339-0)" in rejected[1][0]
    assert "time zone" in rejected[2][0]
    assert "between 40 and 300" in str(rejected[3])
    assert Observation.objects.get().heart_rate == 70


def test_export_round_trips_through_another_device(client, patient, users):
    kit = register(patient, users.clinician_a, "kit")
    start = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    observations_ingest(
        device=kit.device,
        items=[
            {
                "taken_at": start,
                "heart_rate": 72.0,
                "spo2": 97.0,
                "respiratory_rate": 14.0,
                "temperature": 36.8,
                "systolic_bp": 125.0,
                "diastolic_bp": 80.0,
            },
            {"taken_at": start + timedelta(minutes=30), "heart_rate": 95.5, "spo2": 93.0},
            {"taken_at": start + timedelta(minutes=60), "systolic_bp": 101.0, "diastolic_bp": 60.0},
        ],
    )
    client.force_login(users.clinician_a)
    response = client.get(f"/remote-care/patients/{patient.pk}/fhir/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"
    exported = response.json()
    assert exported["type"] == "searchset" and exported["total"] == len(exported["entry"]) == 8
    assert AuditEvent.objects.filter(action=AuditEvent.Action.EXPORTED, patient=patient).exists()

    other = register(patient, users.clinician_a, "second kit")
    exported["type"] = "collection"
    posted = post(other.token, exported)
    assert posted.status_code == 201, posted.json()
    assert posted.json()["stored"] == 3 and posted.json()["rejected"] == []

    def values(device):
        return [
            (o.taken_at, *[getattr(o, f) for f in FIELDS])
            for o in Observation.objects.filter(device=device).order_by("taken_at")
        ]

    assert values(other.device) == values(kit.device)


def test_export_is_scoped_to_the_care_team(client, patient, users):
    client.force_login(users.clinician_b)
    assert client.get(f"/remote-care/patients/{patient.pk}/fhir/").status_code == 404
    client.force_login(users.researcher)
    assert client.get(f"/remote-care/patients/{patient.pk}/fhir/").status_code == 403


def post_raw(token: str, text: str):
    return Client().post(
        URL, text, content_type="application/fhir+json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def test_non_finite_value_quantity_is_refused_per_entry(patient, users):
    import json

    issued = register(patient, users.clinician_a)
    good = observation("8867-4", 70, (timezone.now() - timedelta(minutes=1)).isoformat())
    entries = [json.dumps(good)]
    for minutes, value in enumerate(
        ['"NaN"', '"Infinity"', "NaN", "-Infinity", "1e400", '"1e400"', "9" * 400]
    ):
        when = (timezone.now() - timedelta(minutes=2 + minutes)).isoformat()
        text = json.dumps(observation("9279-1", 0, when)).replace('"value": 0', f'"value": {value}')
        entries.append(text)
    response = post_raw(
        issued.token,
        '{"resourceType": "Bundle", "type": "batch", "entry": [' + ", ".join(entries) + "]}",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["stored"] == 1 and Observation.objects.get().heart_rate == 70
    rejected = {r["entry"]: " ".join(map(str, r["errors"])) for r in body["rejected"]}
    assert sorted(rejected) == [1, 2, 3, 4, 5, 6, 7]
    assert all("finite number" in message for message in rejected.values()), rejected


def test_malformed_entries_are_refused_per_entry_never_a_500(patient, users):
    issued = register(patient, users.clinician_a)
    good = observation("8867-4", 70, (timezone.now() - timedelta(minutes=1)).isoformat())
    response = post(
        issued.token,
        bundle(good, {"resource": {"resourceType": "NoSuchResource"}}, {"resource": 5}, [1], 7),
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["stored"] == 1
    assert [r["entry"] for r in body["rejected"]] == [1, 2, 3, 4]
    assert all(r["errors"] for r in body["rejected"])
    not_a_list = post(issued.token, {"resourceType": "Bundle", "type": "batch", "entry": 5})
    assert (
        not_a_list.status_code == 400 and "entry must be a list" in not_a_list.json()["fhir_errors"]
    )


def test_subject_and_device_must_be_the_tokens_patient_and_device(patient, users):
    issued = register(patient, users.clinician_a)
    other_patient = patient_for(users.clinician_b)
    other = register(other_patient, users.clinician_b, label="other kit")
    device = issued.device

    def entry(minutes: int, **extra) -> dict:
        when = (timezone.now() - timedelta(minutes=minutes)).isoformat()
        return observation("8867-4", 60 + minutes, when, **extra)

    matching = [
        entry(1),  # neither: the token names both
        entry(2, subject={"reference": f"Patient/{patient.pk}"}),
        entry(3, subject={"identifier": {"system": "urn:hospital:mrn", "value": patient.mrn}}),
        entry(4, device={"reference": f"Device/{device.pk}"}),
        entry(5, device={"identifier": {"value": device.token_prefix}}),
        entry(
            6,
            subject={"reference": f"Patient/{patient.pk}", "type": "Patient"},
            device={"reference": f"Device/{device.pk}", "display": "home kit"},
        ),
    ]
    mismatching = [
        entry(11, subject={"reference": f"Patient/{other_patient.pk}"}),
        entry(12, subject={"identifier": {"value": other_patient.mrn}}),
        entry(
            13,
            subject={
                "reference": f"Patient/{patient.pk}",
                "identifier": {"value": other_patient.mrn},
            },
        ),
        entry(14, device={"reference": f"Device/{other.device.pk}"}),
        entry(15, device={"identifier": {"value": other.device.token_prefix}}),
        entry(16, subject={"reference": f"Group/{patient.pk}"}),
        entry(17, subject={"reference": f"https://elsewhere.example/fhir/Patient/{patient.pk}"}),
        entry(18, subject={"display": "the patient"}),
        entry(
            19,
            subject={"reference": f"Patient/{patient.pk}"},
            device={"reference": f"Device/{other.device.pk}"},
        ),
    ]
    # Mixed in one Bundle: the matching entries are stored, each mismatching one is refused.
    response = post(issued.token, bundle(*mismatching[:4], *matching, *mismatching[4:]))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["stored"] == len(matching)
    rejected = {r["entry"]: r["errors"][0] for r in body["rejected"]}
    assert sorted(rejected) == [0, 1, 2, 3, 10, 11, 12, 13, 14]
    assert (
        rejected[0]
        == f"subject Patient/{other_patient.pk} is not the patient this device is registered to"
    )
    assert rejected[1].startswith(
        "subject identifier is not the patient this device is registered to"
    )
    assert rejected[2].startswith("subject identifier is not")
    assert rejected[3] == f"device Device/{other.device.pk} is not this device"
    assert rejected[10].startswith("device identifier is not this device")
    assert "must be a relative 'Patient/<id>'" in rejected[11]
    assert "must be a relative 'Patient/<id>'" in rejected[12]
    assert "must give a reference or an identifier" in rejected[13]
    assert rejected[14] == f"device Device/{other.device.pk} is not this device"
    assert sorted(Observation.objects.values_list("heart_rate", flat=True)) == [
        61,
        62,
        63,
        64,
        65,
        66,
    ]
    assert not Observation.objects.filter(patient=other_patient).exists()
    # The other patient's device may name its own patient; nothing crosses over either way.
    theirs = post(other.token, bundle(entry(30, subject={"reference": f"Patient/{patient.pk}"})))
    assert theirs.status_code == 400 and theirs.json()["stored"] == 0
    assert Observation.objects.filter(patient=patient).count() == 6
