"""The unmatched-studies inbox: a clinician assigns a waiting study to a patient of their care
teams (audited); it then goes through the upload's intake with its classification job; a
clinician of another team cannot assign it to a patient outside their teams, nor see it once
assigned; researchers never see the sender's identifiers."""

from __future__ import annotations

import datetime
import re

import pydicom
import pytest
from django.utils import timezone

from diagnosis.models import Scan, UnmatchedInstance, UnmatchedStudy
from diagnosis.pacs.services import received_file, study_receive
from diagnosis.services import patient_pseudonym
from medai_site.audit.models import AuditEvent
from medai_site.jobs.models import Job
from tests.diagnosis.model_versions import TASK
from tests.diagnosis.pacs.studies import study_files
from tests.platform.factories import patient_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _task(settings):
    settings.MEDAI_DICOM_TASK = TASK


def test_a_clinician_assigns_a_study_and_classification_follows(
    users, client_for, waiting, active_model
):
    # Another MRN, but the same family name and birth date: the study could be hers.
    patient = patient_for(
        users.clinician_a, family_name="Roe", birth_date=datetime.date(1980, 2, 2)
    )
    client = client_for(users.clinician_a)
    page = client.get("/diagnosis/inbox/")
    assert page.status_code == 200 and b"ROE, JANE" in page.content and b"EXT-77" in page.content
    files = [i.file.name for i in UnmatchedInstance.objects.all()]
    response = client.post(
        f"/diagnosis/inbox/{waiting.pk}/", {"patient": patient.pk, "confirm": "on"}
    )
    assert response.status_code == 302
    assert "Study assigned" in client.get(response.url).content.decode()
    waiting.refresh_from_db()
    assert waiting.status == "assigned" and waiting.assigned_patient == patient
    assert waiting.patient_id == "" and waiting.patient_name == ""  # identifiers cleared
    scans = list(Scan.objects.filter(patient=patient))
    assert len(scans) == 2 and all(s.upload_id == waiting.upload_id for s in scans)
    header = pydicom.dcmread(scans[0].file.path)
    assert header.PatientID == patient_pseudonym(patient)
    job = Job.objects.get(kind="diagnosis.inference", patient=patient)
    assert job.params["upload_id"] == waiting.upload_id
    assert not UnmatchedInstance.objects.exists() and files
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.RECORD_CHANGED,
        patient=patient,
        object_type="diagnosis.UnmatchedStudy",
    ).exists()
    assert b"ROE, JANE" not in client.get("/diagnosis/inbox/").content


def test_another_teams_clinician_neither_sees_nor_assigns_it(users, client_for, waiting):
    patient_a = patient_for(users.clinician_a, family_name="Roe", given_name="Jane")
    patient_for(users.clinician_b, family_name="Doe", birth_date=datetime.date(1990, 1, 1))
    other = client_for(users.clinician_b)
    # Nobody in clinician B's teams could be ROE^JANE (EXT-77, born 1980-02-02): the sender's
    # identifiers are not shown to them, before or after the assignment.
    assert b"EXT-77" not in other.get("/diagnosis/inbox/").content
    assert other.get(f"/diagnosis/inbox/{waiting.pk}/").status_code == 404
    refused = other.post(
        f"/diagnosis/inbox/{waiting.pk}/", {"patient": patient_a.pk, "confirm": "on"}
    )
    assert refused.status_code == 404
    waiting.refresh_from_db()
    assert waiting.status == "waiting" and not Scan.objects.exists()

    mine = client_for(users.clinician_a)
    assert b"EXT-77" in mine.get("/diagnosis/inbox/").content
    assert (
        mine.post(
            f"/diagnosis/inbox/{waiting.pk}/", {"patient": patient_a.pk, "confirm": "on"}
        ).status_code
        == 302
    )
    assert other.get(f"/diagnosis/inbox/{waiting.pk}/").status_code == 404
    assert b"EXT-77" not in other.get("/diagnosis/inbox/").content
    assert other.get(f"/diagnosis/scans/{Scan.objects.first().pk}/").status_code == 404


def test_a_clinician_of_two_teams_cannot_assign_to_a_patient_outside_them(
    users, client_for, waiting
):
    patient_for(users.clinician_a, family_name="Roe", given_name="Jane")
    outsider = patient_for(users.clinician_b)
    refused = client_for(users.clinician_a).post(
        f"/diagnosis/inbox/{waiting.pk}/", {"patient": outsider.pk, "confirm": "on"}
    )
    assert refused.status_code == 400 and b"Choose a patient of your care teams" in refused.content
    waiting.refresh_from_db()
    assert waiting.status == "waiting"


def test_an_unconfirmed_assignment_is_refused(users, client_for, waiting):
    patient = patient_for(users.clinician_a, family_name="Roe", given_name="Jane")
    response = client_for(users.clinician_a).post(
        f"/diagnosis/inbox/{waiting.pk}/", {"patient": patient.pk}
    )
    assert response.status_code == 400 and b"Confirm that the study shows" in response.content
    assert not Scan.objects.exists()


def test_researchers_never_see_the_inbox(users, client_for, waiting):
    client = client_for(users.researcher)
    assert client.get("/diagnosis/inbox/").status_code == 403
    assert client.get(f"/diagnosis/inbox/{waiting.pk}/").status_code == 403


def test_a_patient_in_no_care_team_is_not_matched(users, tmp_path):
    from tests.platform.factories import PatientFactory

    PatientFactory(
        mrn="LONE-1", family_name="Roe", given_name="Jane", birth_date=datetime.date(1980, 2, 2)
    )
    paths = study_files(tmp_path, patient_id="LONE-1", name="ROE^JANE", birth_date="19800202")
    handles = [p.open("rb") for p in paths]
    try:
        receipt = study_receive(
            files=[received_file(h, name=h.name) for h in handles], calling_ae="PACS"
        )
    finally:
        for handle in handles:
            handle.close()
    assert receipt.unmatched is not None and "no care team" in receipt.unmatched.reason


def test_an_unknown_study_that_fails_the_intake_leaves_nothing(users, tmp_path):
    from tests.diagnosis.files import pydicom_bytes

    path = tmp_path / "ecg.dcm"
    path.write_bytes(pydicom_bytes("waveform_ecg.dcm"))
    with path.open("rb") as handle:
        receipt = study_receive(files=[received_file(handle, name="ecg.dcm")], calling_ae="PACS")
    assert receipt.unmatched is None and len(receipt.rejected) == 1
    assert "pixel" in receipt.rejected[0].message.lower()
    assert not UnmatchedStudy.objects.exists() and not UnmatchedInstance.objects.exists()


@pytest.mark.parametrize(
    ("sent", "seen"),
    [
        (("MRN-1", "SMITH, Ann", "19500101"), True),  # the same MRN
        (("X", "SMITH, Ann", "20000101"), True),  # the same name
        (("X", "SMYTHE, Ann", "19500101"), True),  # birth date and given name
        (("X", "SMITH, Bea", "19500101"), True),  # birth date and family name
        (("X", "JONES, Bea", "19500101"), False),  # a birth date alone
        (("X", "SMITH, Bea", "20000101"), False),  # a family name alone
        (("", "", ""), False),  # nothing to go on
    ],
)
def test_which_studies_a_patient_could_be(sent, seen):
    from diagnosis.imaging.patient_match import resembles

    patient_id, name, born = sent
    assert (
        resembles(
            patient_id=patient_id,
            display_name=name,
            birth_date=born,
            mrn="MRN-1",
            family_name="Smith",
            given_name="Ann Marie",
            patient_birth_date="19500101",
        )
        is seen
    )


def test_the_inbox_shows_dicom_dates_as_dates_and_when_it_came(users, client_for, waiting):
    UnmatchedStudy.objects.filter(pk=waiting.pk).update(study_date="20240131")
    patient_for(users.clinician_a, family_name="Roe", birth_date=datetime.date(1980, 2, 2))
    html = client_for(users.clinician_a).get("/diagnosis/inbox/").content.decode()
    assert "born 2 Feb 1980" in html and "19800202" not in html
    assert "study of 31 Jan 2024" in html
    assert re.search(r"<time datetime=\"[^\"]+\" data-received>just now</time>", html)
    assert waiting.received_at.strftime("%-d %b %Y") in html  # the absolute time beside it
    assign = client_for(users.clinician_a).get(f"/diagnosis/inbox/{waiting.pk}/").content
    assert "2 Feb 1980" in assign.decode() and "just now" in assign.decode()
    UnmatchedStudy.objects.filter(pk=waiting.pk).update(
        received_at=timezone.now() - datetime.timedelta(hours=3, minutes=5)
    )
    html = client_for(users.clinician_a).get("/diagnosis/inbox/").content.decode()
    assert "3\xa0hours, 5\xa0minutes ago" in html


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("19800202", "2 Feb 1980"),
        ("19800230", "19800230 (as sent; not a valid date)"),
        ("1980", "1980 (as sent; not a valid date)"),
        ("", ""),
    ],
)
def test_dicom_dates_read_in_the_site_format(sent, shown):
    from diagnosis.templatetags.inbox_format import dicom_date

    assert dicom_date(sent) == shown
