"""Results leaving MedAI: a stored prediction as a DICOM SR and heat-map Secondary Capture, and
as FHIR R4 (DiagnosticReport, Observations, Provenance); who may download them, and the audit
trail of each export."""

from __future__ import annotations

import io
import json

import pydicom
import pytest
from fhir.resources.R4B.bundle import Bundle

from diagnosis.fhir import predictions_bundle
from diagnosis.models import Prediction
from diagnosis.reporting import (
    DicomTarget,
    prediction_heatmap_capture,
    prediction_sr,
    stored_target,
)
from diagnosis.services import (
    patient_pseudonym,
    prediction_override,
    review_record,
    scan_upload,
)
from medai_site.audit.models import AuditEvent
from tests.diagnosis.files import chest_cr_dicom, upload
from tests.diagnosis.imaging.sr_checks import coded, dciodvfy, find, image_refs, one, probabilities
from tests.diagnosis.model_versions import TASK
from tests.platform.factories import patient_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def chest_cr(users, chest_model, run_job):
    """Clinician A's patient with a chest radiograph (DICOM CR) scored in scope."""
    patient = patient_for(users.clinician_a)
    outcome = scan_upload(
        patient=patient,
        uploaded_by=users.clinician_a,
        task=TASK,
        files=[upload("CR0001", chest_cr_dicom())],
    )
    run_job(outcome.job)
    prediction = Prediction.objects.get()
    assert prediction.scored and prediction.heatmaps
    return prediction


def read(content: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(content))


def stored(prediction: Prediction) -> pydicom.Dataset:
    with prediction.scan.file.open("rb") as handle:
        return pydicom.dcmread(handle, stop_before_pixels=True)


def test_sr_download_reports_the_stored_prediction_in_its_stored_study(users, chest_cr, client_for):
    prediction = chest_cr
    source = stored(prediction)
    response = client_for(users.clinician_a).get(f"/diagnosis/predictions/{prediction.pk}/sr.dcm")
    assert response.status_code == 200 and response["Content-Type"] == "application/dicom"
    assert "attachment" in response["Content-Disposition"]
    assert response["Cache-Control"] == "private, no-store"  # patient data: no shared cache
    sr = read(response.content)
    # Files under the de-identified study and pseudonym MedAI stores, never the originals.
    assert sr.StudyInstanceUID == source.StudyInstanceUID
    assert sr.PatientID == patient_pseudonym(prediction.scan.patient) == source.PatientID
    assert "HOSP-12345" not in response.content.decode("latin-1")
    expected = (str(source.SOPClassUID), str(source.SOPInstanceUID))
    assert image_refs(one(sr, "DCM", "121071"), "SCT", "260753009") == [expected]
    assert probabilities(sr).keys() == {"Normal", "Pneumonia"}
    assert sum(probabilities(sr).values()) == pytest.approx(1.0, abs=1e-4)
    version = prediction.model_version
    assert one(sr, "99MEDAI", "SHA256").TextValue == version.sha256
    assert one(sr, "DCM", "111003").TextValue == str(version.version)
    assert coded(one(sr, "99MEDAI", "REVIEW"))[1] == "NOT-REVIEWED"
    assert dciodvfy(response.content)[0] == []
    event = AuditEvent.objects.filter(action=AuditEvent.Action.EXPORTED).latest("id")
    assert event.actor == users.clinician_a and event.patient == prediction.scan.patient
    assert event.object_type == "diagnosis.Prediction" and event.object_id == str(prediction.pk)
    assert event.detail["sop_instance_uid"] == sr.SOPInstanceUID


def test_heatmap_capture_files_beside_the_scan_and_the_sr_points_at_it(users, chest_cr, client_for):
    prediction = chest_cr
    client = client_for(users.clinician_a)
    sc = client.get(f"/diagnosis/predictions/{prediction.pk}/sc.dcm")
    assert sc.status_code == 200
    capture = read(sc.content)
    source = stored(prediction)
    assert capture.StudyInstanceUID == source.StudyInstanceUID
    assert capture.SeriesInstanceUID != source.SeriesInstanceUID
    assert capture.PhotometricInterpretation == "RGB" and capture.pixel_array.ndim == 3
    assert capture.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert dciodvfy(sc.content)[0] == []
    sr = read(client.get(f"/diagnosis/predictions/{prediction.pk}/sr.dcm").content)
    assert image_refs(sr, "99MEDAI", "HEATMAP") == [
        (str(capture.SOPClassUID), str(capture.SOPInstanceUID))
    ]
    formats = AuditEvent.objects.filter(action=AuditEvent.Action.EXPORTED).values_list(
        "detail__format", flat=True
    )
    assert sorted(formats) == ["DICOM Comprehensive SR", "DICOM Secondary Capture"]


def test_a_review_makes_a_new_sr_revision_naming_the_role_only(users, chest_cr):
    prediction = chest_cr
    before = prediction_sr(prediction=prediction)
    again = prediction_sr(prediction=Prediction.objects.get(pk=prediction.pk))
    assert again.SOPInstanceUID == before.SOPInstanceUID  # same answer, same object
    other = next(c for c in prediction.class_names if c != prediction.predicted_class)
    review_record(prediction=prediction, reviewer=users.clinician_a, label=other)
    after = prediction_sr(prediction=Prediction.objects.get(pk=prediction.pk))
    assert after.SOPInstanceUID != before.SOPInstanceUID
    assert after.SeriesInstanceUID == before.SeriesInstanceUID
    assert (before.InstanceNumber, after.InstanceNumber) == (1, 2)
    review = one(after, "99MEDAI", "REVIEW")
    assert coded(review)[1] == "CORRECTED"
    assert coded(one(review, "99MEDAI", "REVIEW-LABEL"))[2].lower() == other
    assert coded(one(review, "99MEDAI", "REVIEWER-ROLE"))[1] == "CLINICIAN"
    written = io.BytesIO()
    pydicom.dcmwrite(written, after, enforce_file_format=True)
    assert users.clinician_a.username.encode() not in written.getvalue()


def test_the_caller_can_file_the_objects_under_other_uids(chest_cr):
    """The sending piece passes the original UIDs for the PACS that sent the study."""
    prediction = chest_cr
    stored_one = stored_target(prediction.scan)
    original = DicomTarget(
        study=type(stored_one.study)(
            study_instance_uid="1.2.3.4", patient_name="Identifiable^Jane", patient_id="HOSP-1"
        ),
        sources=(
            type(stored_one.sources[0])(
                "1.2.840.10008.5.1.4.1.1.1", "1.2.3.6", "1.2.3.5", "1.2.3.4"
            ),
        ),
    )
    sr = prediction_sr(prediction=prediction, target=original)
    capture = prediction_heatmap_capture(prediction=prediction, target=original)
    assert sr.StudyInstanceUID == capture.StudyInstanceUID == "1.2.3.4"
    assert image_refs(sr, "SCT", "260753009")[0][1] == "1.2.3.6"
    assert image_refs(sr, "99MEDAI", "HEATMAP")[0][1] == capture.SOPInstanceUID


def test_out_of_scope_sr_says_so_with_no_probabilities_and_no_heatmap(users, mixed, client_for):
    _, _, _, ct = mixed
    client = client_for(users.clinician_a)
    response = client.get(f"/diagnosis/predictions/{ct.pk}/sr.dcm")
    assert response.status_code == 200
    sr = read(response.content)
    scope = one(sr, "99MEDAI", "SCOPE")
    assert coded(scope)[1] == "OUT-OF-SCOPE"
    assert one(scope, "99MEDAI", "SCOPE-REASON").TextValue == ct.scope_reason
    assert not find(sr, "99MEDAI", "CLASS-PROB") and not find(sr, "DCM", "121071")
    assert not find(sr, "99MEDAI", "HEATMAP")
    assert dciodvfy(response.content)[0] == []
    missing = client.get(f"/diagnosis/predictions/{ct.pk}/sc.dcm")
    assert missing.status_code == 404


def test_scored_anyway_sr_and_fhir_keep_the_scope_and_say_who_asked_why(users, mixed):
    _, _, _, ct = mixed
    answer = prediction_override(prediction=ct, user=users.clinician_a, reason="need a read")
    prediction = Prediction.objects.get(pk=answer.pk)
    assert prediction.scored and prediction.overridden
    sr = prediction_sr(prediction=prediction)
    scope = one(sr, "99MEDAI", "SCOPE")
    assert coded(scope)[1] == "OUT-OF-SCOPE"
    assert one(scope, "99MEDAI", "OVERRIDE").TextValue == "need a read"
    assert one(scope, "99MEDAI", "SCOPE-REASON").TextValue == prediction.scope_why
    assert not prediction.scope_why.startswith("not scored")
    assert probabilities(sr) and find(sr, "99MEDAI", "HEATMAP")
    bundle = predictions_bundle([prediction])
    report = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "DiagnosticReport"
    )
    assert "Scored at a clinician's request" in report["conclusion"]


def test_a_png_scan_gets_a_study_of_its_own_and_no_source_reference(users, mixed, client_for):
    _, _, chest_png, _ = mixed
    response = client_for(users.clinician_a).get(f"/diagnosis/predictions/{chest_png.pk}/sr.dcm")
    sr = read(response.content)
    assert not find(sr, "DCM", "111028")  # nothing to put in an image library
    capture = read(
        client_for(users.clinician_a).get(f"/diagnosis/predictions/{chest_png.pk}/sc.dcm").content
    )
    assert capture.StudyInstanceUID == sr.StudyInstanceUID
    assert dciodvfy(response.content)[0] == []


def test_other_care_teams_get_404_and_other_roles_403(users, chest_cr, client_for):
    pk = chest_cr.pk
    scan = chest_cr.scan
    urls = [
        f"/diagnosis/predictions/{pk}/sr.dcm",
        f"/diagnosis/predictions/{pk}/sc.dcm",
        f"/diagnosis/scans/{scan.pk}/fhir.json",
        f"/diagnosis/patients/{scan.patient_id}/fhir.json",
    ]
    for url in urls:
        assert client_for(users.clinician_b).get(url).status_code == 404, url
        assert client_for(users.model_admin).get(url).status_code == 403, url
        assert client_for(users.researcher).get(url).status_code == 403, url
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EXPORTED).exists()


def fhir_resources(bundle: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for entry in bundle["entry"]:
        out.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    return out


def test_fhir_bundle_of_a_reviewed_prediction_validates_and_round_trips(
    users, chest_cr, client_for
):
    prediction = chest_cr
    review_record(
        prediction=prediction, reviewer=users.clinician_a, label=prediction.predicted_class
    )
    response = client_for(users.clinician_a).get(f"/diagnosis/scans/{prediction.scan_id}/fhir.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"
    assert "attachment" in response["Content-Disposition"]
    assert response["Cache-Control"] == "private, no-store"
    bundle = json.loads(response.content)
    parsed = Bundle.parse_raw(response.content)
    assert json.loads(parsed.json()) == bundle  # serialise, parse back: same content
    found = fhir_resources(bundle)
    assert sorted(found) == ["Device", "DiagnosticReport", "Observation", "Provenance"]
    report = found["DiagnosticReport"][0]
    assert report["status"] == "final"
    assert "Accepted by a clinician" in report["conclusion"]
    assert report["subject"]["reference"] == f"Patient/{prediction.scan.patient_id}"
    finding = next(
        o for o in found["Observation"] if o["code"]["coding"][0]["code"] == "MODEL-FINDING"
    )
    assert finding["valueCodeableConcept"]["text"] == prediction.predicted_class
    probs = {
        c["code"]["text"]: c["valueQuantity"]["value"]
        for c in finding["component"]
        if c["code"]["coding"][0]["code"] == "CLASS-PROB"
    }
    assert probs == {
        f"Probability of {name}": pytest.approx(p, abs=1e-6)
        for name, p in prediction.probabilities.items()
    }
    device = found["Device"][0]
    assert device["version"][0]["value"] == str(prediction.model_version.version)
    assert {
        "system": "urn:medai:model-artifact-sha256",
        "value": prediction.model_version.sha256,
    } in device["identifier"]
    provenance = found["Provenance"][0]
    urls = {e["resource"]["id"]: e["fullUrl"] for e in bundle["entry"]}
    assert provenance["agent"][0]["who"]["reference"] == urls[device["id"]]
    reviewer = provenance["agent"][1]
    assert reviewer["type"]["coding"][0]["code"] == "verifier"
    assert reviewer["who"]["identifier"]["value"] == str(users.clinician_a.pk)
    assert users.clinician_a.username not in response.content.decode()
    assert {t["reference"] for t in provenance["target"]} >= {
        urls[report["id"]],
        urls[finding["id"]],
    }
    source = stored(prediction)
    assert (
        provenance["entity"][0]["what"]["identifier"]["value"] == f"urn:oid:{source.SOPInstanceUID}"
    )
    event = AuditEvent.objects.get(action=AuditEvent.Action.EXPORTED)
    assert event.detail["format"] == "FHIR R4 Bundle" and event.patient == prediction.scan.patient


def test_patient_fhir_export_keeps_out_of_scope_answers_without_values(users, mixed, client_for):
    patient, _, chest, ct = mixed
    response = client_for(users.clinician_a).get(f"/diagnosis/patients/{patient.pk}/fhir.json")
    assert response.status_code == 200
    bundle = json.loads(response.content)
    assert json.loads(Bundle.parse_raw(response.content).json()) == bundle
    found = fhir_resources(bundle)
    assert len(found["DiagnosticReport"]) == 2 and len(found["Provenance"]) == 2
    assert len(found["Device"]) == 1  # one model version, listed once
    refused = next(o for o in found["Observation"] if "dataAbsentReason" in o)
    assert "valueCodeableConcept" not in refused
    assert not [c for c in refused["component"] if "valueQuantity" in c]
    assert refused["status"] == "preliminary"
    reports = [r["conclusion"] for r in found["DiagnosticReport"]]
    assert any("Outside the scope" in text and "not scored" in text for text in reports)
    assert any(f"predicted {chest.predicted_class}" in text for text in reports)
    event = AuditEvent.objects.get(action=AuditEvent.Action.EXPORTED)
    assert event.patient == patient and event.object_id == str(patient.pk)
    assert ct.scan.patient == patient


def test_viewer_and_scan_list_link_the_exports(users, chest_cr, client_for):
    client = client_for(users.clinician_a)
    page = client.get(f"/diagnosis/scans/{chest_cr.scan_id}/").content.decode()
    for url in (
        f"/diagnosis/predictions/{chest_cr.pk}/sr.dcm",
        f"/diagnosis/predictions/{chest_cr.pk}/sc.dcm",
        f"/diagnosis/scans/{chest_cr.scan_id}/fhir.json",
    ):
        assert f'href="{url}"' in page, url
    patient = chest_cr.scan.patient
    listing = client.get(f"/diagnosis/patients/{patient.pk}/scans/").content.decode()
    assert f'href="/diagnosis/patients/{patient.pk}/fhir.json"' in listing
