"""Burned-in identifiers: images of kinds that commonly carry text in their pixels, without
Burned In Annotation, are held for the care team's confirmation; never classified or shown
elsewhere until a clinician confirms (audited) or discards them."""

from __future__ import annotations

from html import unescape
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from diagnosis.imaging.burned_in import (
    RISKY_MODALITIES,
    RISKY_SOP_CLASSES,
    Verdict,
    burned_in_assessment,
)
from diagnosis.models import Scan, ScanUpload
from medai_site.audit.models import AuditEvent
from medai_site.jobs.models import Job
from tests import hostile_files as hostile
from tests.diagnosis.files import chest_png, upload
from tests.diagnosis.model_versions import TASK
from tests.platform.factories import patient_for

US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


@pytest.mark.parametrize(
    ("attrs", "verdict"),
    [
        ({"Modality": "US", "SOPClassUID": US_IMAGE}, Verdict.HOLD),
        ({"Modality": "OT", "SOPClassUID": SECONDARY_CAPTURE}, Verdict.HOLD),
        ({"Modality": "XA", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.12.1"}, Verdict.HOLD),
        ({"Modality": "ES", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.77.1.1.1"}, Verdict.HOLD),
        # The SOP class alone is enough (a screenshot stored with a CT modality).
        ({"Modality": "CT", "SOPClassUID": SECONDARY_CAPTURE}, Verdict.HOLD),
        ({"Modality": "US", "SOPClassUID": US_IMAGE, "BurnedInAnnotation": "NO"}, Verdict.CLEAN),
        ({"Modality": "CT", "SOPClassUID": CT_IMAGE}, Verdict.CLEAN),
        ({"Modality": "CT", "SOPClassUID": CT_IMAGE, "BurnedInAnnotation": "YES"}, Verdict.REJECT),
        (
            {"Modality": "CT", "SOPClassUID": CT_IMAGE, "RecognizableVisualFeatures": "YES"},
            Verdict.REJECT,
        ),
        # Recognizable features outrank a "no burned-in text".
        (
            {
                "Modality": "XC",
                "BurnedInAnnotation": "NO",
                "RecognizableVisualFeatures": "YES",
            },
            Verdict.REJECT,
        ),
    ],
)
def test_assessment_from_the_header(attrs, verdict):
    assert burned_in_assessment(hostile.dicom_dataset(**attrs)).verdict == verdict


def test_the_policy_lists_are_data_with_reasons():
    assert {"US", "SC", "OT", "XA", "ES"} <= set(RISKY_MODALITIES)
    assert SECONDARY_CAPTURE in RISKY_SOP_CLASSES and US_IMAGE in RISKY_SOP_CLASSES
    assert all(RISKY_MODALITIES.values()) and all(RISKY_SOP_CLASSES.values())


def _us(**attrs) -> bytes:
    return hostile.dicom(Modality="US", SOPClassUID=US_IMAGE, **attrs)


def _post(client, patient, files):
    return client.post(f"/diagnosis/patients/{patient.pk}/scans/", {"task": TASK, "files": files})


@pytest.mark.django_db
def test_risky_scan_is_held_not_classified_and_the_result_says_why(
    users, active_model, client_for, run_job
):
    patient = patient_for(users.clinician_a)
    client = client_for(users.clinician_a)
    response = _post(client, patient, [upload("echo.dcm", _us()), upload("c.png", chest_png())])
    assert response.status_code == 302
    page = unescape(client.get(response["Location"]).content.decode())
    assert "1 file accepted" in page
    assert "1 file held until a clinician confirms" in page and "echo.dcm" in page
    assert "Ultrasound Image" in page  # the SOP class that makes it risky
    held = Scan.objects.get(original_name="echo.dcm")
    assert held.held and "Burned In Annotation is absent" in held.hold_reason
    # Stored de-identified all the same.
    assert b"Identifiable^Jane" not in Path(held.file.path).read_bytes()
    # Only the PNG is to be classified.
    job = Job.objects.get(kind="diagnosis.inference")

    run_job(job)
    assert not held.predictions.exists()
    assert Scan.objects.get(original_name="c.png").predictions.count() == 1
    # Not listed, not in the viewer, not among the frames: the confirmation screen only.
    listing = client.get(f"/diagnosis/patients/{patient.pk}/scans/").content.decode()
    assert f'href="/diagnosis/scans/{held.pk}/"' not in listing
    assert f'href="/diagnosis/scans/{held.pk}/hold/"' in listing
    assert client.get(f"/diagnosis/scans/{held.pk}/")["Location"].endswith(
        f"/diagnosis/scans/{held.pk}/hold/"
    )
    assert client.get(f"/diagnosis/scans/{held.pk}/frames/0/").status_code == 404
    patient_page = client.get(f"/patients/{patient.pk}/").content.decode()
    assert f"/diagnosis/scans/{held.pk}/" not in patient_page


@pytest.mark.django_db
def test_confirmation_screen_shows_the_image_to_the_care_team_only_and_is_audited(
    users, active_model, client_for
):
    patient = patient_for(users.clinician_a)
    _post(client_for(users.clinician_a), patient, [upload("echo.dcm", _us())])
    held = Scan.objects.get()
    page = client_for(users.clinician_a).get(f"/diagnosis/scans/{held.pk}/hold/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'src="data:image/png;base64,' in html and "Burned In Annotation is absent" in html
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.RECORD_VIEWED,
        actor=users.clinician_a,
        object_id=str(held.pk),
        detail__page="burned-in text confirmation",
    ).exists()
    assert client_for(users.clinician_b).get(f"/diagnosis/scans/{held.pk}/hold/").status_code == 404
    assert client_for(users.researcher).get(f"/diagnosis/scans/{held.pk}/hold/").status_code == 403


@pytest.mark.django_db
def test_confirming_needs_the_tick_then_releases_classifies_and_audits_who_and_when(
    users, active_model, client_for
):
    patient = patient_for(users.clinician_a)
    client = client_for(users.clinician_a)
    _post(client, patient, [upload("echo.dcm", _us())])
    held = Scan.objects.get()
    assert not Job.objects.exclude(kind="registry.validate").exists()
    refused = client.post(f"/diagnosis/scans/{held.pk}/hold/", {"decision": "confirm"})
    assert refused.status_code == 400 and "Tick that you have looked" in unescape(
        refused.content.decode()
    )
    assert Scan.objects.get().held
    response = client.post(
        f"/diagnosis/scans/{held.pk}/hold/", {"decision": "confirm", "looked": "on"}
    )
    assert response["Location"] == f"/diagnosis/scans/{held.pk}/"
    scan = Scan.objects.get()
    assert not scan.held and scan.hold_confirmed_by == users.clinician_a
    assert scan.hold_confirmed_at is not None
    assert Job.objects.filter(kind="diagnosis.inference").count() == 1
    event = AuditEvent.objects.get(
        action=AuditEvent.Action.RECORD_CHANGED, object_id=str(scan.pk), actor=users.clinician_a
    )
    assert event.detail["burned_in_hold"] == "confirmed no identifying text visible"
    # A second confirmation (double submit) changes nothing.
    assert client.get(f"/diagnosis/scans/{held.pk}/hold/").status_code == 404
    assert client.get(f"/diagnosis/scans/{held.pk}/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_discarding_deletes_the_row_and_its_files_and_is_audited(
    users, active_model, client_for, settings
):
    patient = patient_for(users.clinician_a)
    client = client_for(users.clinician_a)
    _post(client, patient, [upload("echo.dcm", _us())])
    held = Scan.objects.get()
    paths = [Path(held.file.path), Path(held.display.path)]
    assert all(p.exists() for p in paths)
    response = client.post(f"/diagnosis/scans/{held.pk}/hold/", {"decision": "discard"})
    assert response.status_code == 302
    assert not Scan.objects.exists() and not any(p.exists() for p in paths)
    assert not Job.objects.exclude(kind="registry.validate").exists()
    upload_row = ScanUpload.objects.get()
    assert upload_row.rejected[-1]["name"] == "echo.dcm"
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.RECORD_CHANGED, detail__burned_in_hold="discarded"
    ).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"BurnedInAnnotation": "YES"}, "Burned In Annotation = YES"),
        ({"RecognizableVisualFeatures": "YES"}, "Recognizable Visual Features = YES"),
    ],
)
def test_declared_identifying_pixels_are_refused(
    users, active_model, client_for, settings, attrs, message
):
    patient = patient_for(users.clinician_a)
    response = _post(
        client_for(users.clinician_a), patient, [upload("x.dcm", hostile.dicom(**attrs))]
    )
    assert response.status_code == 400 and message in unescape(response.content.decode())
    assert not Scan.objects.exists() and not ScanUpload.objects.exists()


@pytest.mark.django_db
def test_explicit_no_burned_in_text_is_trusted(users, active_model, client_for):
    patient = patient_for(users.clinician_a)
    response = _post(
        client_for(users.clinician_a),
        patient,
        [upload("echo.dcm", _us(BurnedInAnnotation="NO", SOPInstanceUID=generate_uid()))],
    )
    assert response.status_code == 302
    assert not Scan.objects.get().held
    assert Job.objects.filter(kind="diagnosis.inference").exists()


def _png_with_banner() -> bytes:
    import io

    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.open(io.BytesIO(chest_png())).convert("L")
    ImageDraw.Draw(canvas).text(
        (6, 6), "DOE^JANE 7723401 03/12/1950", fill=255, font=ImageFont.load_default(size=12)
    )
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.django_db
def test_a_png_showing_printed_text_is_held_and_a_plain_film_is_not(
    users, active_model, client_for
):
    patient = patient_for(users.clinician_a)
    client = client_for(users.clinician_a)
    files = [upload("shot.png", _png_with_banner()), upload("film.png", chest_png())]
    response = _post(client, patient, files)
    assert response.status_code == 302
    page = unescape(client.get(response["Location"]).content.decode())
    assert "1 file held until a clinician confirms" in page and "shot.png" in page
    held = Scan.objects.get(original_name="shot.png")
    assert held.held and "text-like marks" in held.hold_reason
    assert not Scan.objects.get(original_name="film.png").held
