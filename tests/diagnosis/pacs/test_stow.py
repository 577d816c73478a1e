"""DICOMweb STOW-RS (PS3.18 §10.5): a sender with a token stores a study over HTTP; it goes
through patient matching and the upload's intake like a C-STORE, and the answer is the Store
Instances Response Module with the sender's own UIDs and the standard failure reasons.
Orthanc's DICOMweb plugin is the client of the end-to-end test."""

from __future__ import annotations

import datetime
import http.client
import io
import json
import logging
import threading
from pathlib import Path

import pydicom
import pytest
from django.core.management import call_command
from django.db import connection as db_connection
from django.test import Client
from django.utils import timezone
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from diagnosis.models import (
    DicomWebSender,
    Scan,
    ScanUpload,
    StowStudy,
    UnmatchedInstance,
    UnmatchedStudy,
)
from diagnosis.pacs.services import (
    dicomweb_sender_authenticate,
    dicomweb_sender_issue,
    dicomweb_sender_revoke,
)
from diagnosis.services import patient_pseudonym
from medai_site.audit.models import AuditEvent
from medai_site.jobs.models import Job
from tests.diagnosis.model_versions import TASK
from tests.diagnosis.pacs.studies import study_files
from tests.platform.factories import patient_for
from tests.support.gunicorn import gunicorn_running
from tests.support.orthanc import DICOMWEB_PLUGIN, orthanc_available, orthanc_running

# Received studies are classified only while a model is in service.
pytestmark = pytest.mark.usefixtures("model_in_service")

URL = "/dicomweb/studies"
BOUNDARY = "medai-test-boundary-7d1f"
CTYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
REFERENCED, FAILED, REASON = "00081199", "00081198", "00081197"
SOP_CLASS, SOP_INSTANCE = "00081150", "00081155"


@pytest.fixture(autouse=True)
def _task(settings):
    settings.MEDAI_DICOM_TASK = TASK
    settings.MEDAI_DICOMWEB_RATE_LIMIT = None


@pytest.fixture
def token(db) -> str:
    return dicomweb_sender_issue(name="Radiology PACS").token


@pytest.fixture
def curie(users):
    return patient_for(
        users.clinician_a,
        mrn="STOW-0001",
        family_name="Curie",
        given_name="Marie",
        birth_date=datetime.date(1967, 11, 7),
    )


def curie_study(folder: Path, **kwargs) -> list[Path]:
    return study_files(
        folder, patient_id="STOW-0001", name="CURIE^MARIE", birth_date="19671107", **kwargs
    )


def body(*parts: bytes | tuple[str, bytes]) -> bytes:
    out = b"preamble to ignore\r\n"
    for part in parts:
        ctype, data = part if isinstance(part, tuple) else ("application/dicom", part)
        out += f"--{BOUNDARY}\r\nContent-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\nepilogue\r\n".encode()


def stow(client, data: bytes, *, token: str, url: str = URL, ctype: str = CTYPE):
    return client.post(url, data=data, content_type=ctype, HTTP_AUTHORIZATION=f"Bearer {token}")


def uids(path: Path) -> tuple[str, str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return str(ds.SOPClassUID), str(ds.SOPInstanceUID)


def items(answer, tag: str) -> list[dict]:
    return answer.get(tag, {}).get("Value", [])


def sr_document() -> bytes:
    """A Basic Text SR: a valid Part 10 file of a SOP class that is not an image."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.PatientID = "STOW-0001"
    ds.Modality = "SR"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_a_known_patients_study_is_stored_under_them_with_one_job(client, token, curie, tmp_path):
    paths = curie_study(tmp_path, count=3)
    response = stow(client, body(*(p.read_bytes() for p in paths)), token=token)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/dicom+json"
    answer = json.loads(response.content)
    assert FAILED not in answer
    # The sender's own UIDs, which it recognises; no Retrieve URL (no WADO-RS here).
    sent = {uids(p) for p in paths}
    listed = {
        (i[SOP_CLASS]["Value"][0], i[SOP_INSTANCE]["Value"][0]) for i in items(answer, REFERENCED)
    }
    assert listed == sent
    assert "00081190" not in answer
    upload = ScanUpload.objects.get(patient=curie)
    scans = list(Scan.objects.filter(upload=upload))
    assert len(scans) == 3
    for scan in scans:
        stored = scan.file.read()
        assert pydicom.dcmread(scan.file.path).PatientID == patient_pseudonym(curie)
        assert b"CURIE" not in stored and b"STOW-0001" not in stored
        assert str(pydicom.dcmread(scan.file.path).SOPInstanceUID) not in {s[1] for s in sent}
    job = Job.objects.get(kind="diagnosis.inference", patient=curie)
    assert job.params == {"upload_id": upload.pk, "task": TASK}
    # One audit event for the request, naming the sender, beside the intake's own.
    request_events = AuditEvent.objects.filter(actor_username="dicomweb:Radiology PACS")
    assert request_events.count() == 1
    assert request_events.get().detail["stored"] == 3
    assert DicomWebSender.objects.get().last_used_at is not None
    # Results go back with the original UIDs only to the destination named for this sender.
    assert {s.source_instance.source for s in scans} == {"STOW:Radiology PACS"}


def test_an_unknown_patients_study_waits_in_the_inbox(client, token, tmp_path):
    paths = study_files(tmp_path, patient_id="NOBODY-9", name="DOE^JOHN", birth_date="19500101")
    response = stow(client, body(*(p.read_bytes() for p in paths)), token=token)
    assert response.status_code == 200, response.content
    study = UnmatchedStudy.objects.get()
    assert study.patient_id == "NOBODY-9" and "No patient" in study.reason
    # The sender in full (two senders sharing a 16-character prefix stay apart).
    assert study.calling_ae == "STOW:Radiology PACS"
    assert study.instances.count() == 2
    for instance in UnmatchedInstance.objects.all():
        assert b"DOE^JOHN" not in instance.file.read()
    assert (
        not ScanUpload.objects.exists()
        and not Job.objects.exclude(kind="registry.validate").exists()
    )


def test_a_study_split_over_two_requests_is_one_upload_and_one_job(client, token, curie, tmp_path):
    paths = curie_study(tmp_path, count=3)
    assert stow(client, body(*(p.read_bytes() for p in paths[:2])), token=token).status_code == 200
    job = Job.objects.get(kind="diagnosis.inference", patient=curie)
    # The first job waits for the rest of the study (the settle window) before it runs.
    assert job.not_before is not None and job.not_before > job.created_at
    response = stow(client, body(paths[2].read_bytes()), token=token)
    assert response.status_code == 200, response.content
    upload = ScanUpload.objects.get(patient=curie)
    scans = sorted(Scan.objects.filter(upload=upload).values_list("pk", flat=True))
    assert len(scans) == 3
    job = Job.objects.get(kind="diagnosis.inference", patient=curie)
    assert job.status == Job.Status.QUEUED and sorted(job.params["scan_ids"]) == scans
    assert job.title == "Classify 3 scans"
    # The sender's study UID is kept only as a keyed hash.
    row = StowStudy.objects.get()
    assert row.upload == upload
    assert str(pydicom.dcmread(paths[0]).StudyInstanceUID) not in row.study_key


def test_a_request_after_the_settle_window_is_a_new_upload_and_job(client, token, curie, tmp_path):
    paths = curie_study(tmp_path, count=2)
    assert stow(client, body(paths[0].read_bytes()), token=token).status_code == 200
    StowStudy.objects.update(last_received_at=timezone.now() - datetime.timedelta(minutes=1))
    assert stow(client, body(paths[1].read_bytes()), token=token).status_code == 200
    assert ScanUpload.objects.filter(patient=curie).count() == 2
    assert sorted(u.scans.count() for u in ScanUpload.objects.all()) == [1, 1]
    assert Job.objects.filter(kind="diagnosis.inference", patient=curie).count() == 2
    assert StowStudy.objects.get().upload == ScanUpload.objects.order_by("pk").last()


def test_the_rest_of_a_study_already_classified_gets_a_job_for_itself(
    client, token, curie, tmp_path
):
    paths = curie_study(tmp_path, count=3)
    stow(client, body(*(p.read_bytes() for p in paths[:2])), token=token)
    first = Job.objects.get(kind="diagnosis.inference")
    Job.objects.filter(pk=first.pk).update(status=Job.Status.SUCCEEDED)
    assert stow(client, body(paths[2].read_bytes()), token=token).status_code == 200
    upload = ScanUpload.objects.get(patient=curie)
    assert upload.scans.count() == 3
    first.refresh_from_db()
    assert first.params == {"upload_id": upload.pk, "task": TASK}
    second = Job.objects.exclude(pk=first.pk).get(kind="diagnosis.inference")
    newest = upload.scans.order_by("pk").last()
    assert second.params == {"upload_id": upload.pk, "task": TASK, "scan_ids": [newest.pk]}
    assert second.status == Job.Status.QUEUED and second.title == "Classify 1 scan"


@pytest.mark.parametrize("later", [False, True], ids=["inside-window", "after-window"])
def test_a_resent_study_is_acknowledged_and_stored_once(client, token, curie, tmp_path, later):
    # A sender that lost the acknowledgement sends the same instances again.
    paths = curie_study(tmp_path, count=3)
    assert stow(client, body(*(p.read_bytes() for p in paths[:2])), token=token).status_code == 200
    if later:
        StowStudy.objects.update(last_received_at=timezone.now() - datetime.timedelta(minutes=1))
    response = stow(client, body(*(p.read_bytes() for p in paths)), token=token)
    assert response.status_code == 200, response.content
    answer = json.loads(response.content)
    assert FAILED not in answer and len(items(answer, REFERENCED)) == 3
    # The two it held are not stored again; only the new one is, with a job of its own
    # after the window (inside it, the first job takes it).
    assert Scan.objects.filter(patient=curie).count() == 3
    assert ScanUpload.objects.filter(patient=curie).count() == (2 if later else 1)
    jobs = Job.objects.filter(kind="diagnosis.inference", patient=curie)
    assert jobs.count() == (2 if later else 1)
    # Everything resent: acknowledged, nothing new at all.
    response = stow(client, body(*(p.read_bytes() for p in paths)), token=token)
    assert response.status_code == 200 and FAILED not in json.loads(response.content)
    assert Scan.objects.filter(patient=curie).count() == 3
    assert Job.objects.filter(kind="diagnosis.inference", patient=curie).count() == jobs.count()


def test_a_resent_unknown_patients_study_waits_once_in_the_inbox(client, token, tmp_path):
    paths = study_files(
        tmp_path, patient_id="NOBODY-9", name="DOE^JOHN", birth_date="19500101", count=2
    )
    for _ in range(2):
        response = stow(client, body(*(p.read_bytes() for p in paths)), token=token)
        assert response.status_code == 200, response.content
        StowStudy.objects.update(last_received_at=timezone.now() - datetime.timedelta(minutes=1))
    assert UnmatchedStudy.objects.count() == 1
    assert UnmatchedInstance.objects.count() == 2


def test_an_unknown_patients_split_study_is_one_inbox_study(client, token, tmp_path):
    paths = study_files(
        tmp_path, patient_id="NOBODY-9", name="DOE^JOHN", birth_date="19500101", count=3
    )
    for chunk in (paths[:1], paths[1:]):
        response = stow(client, body(*(p.read_bytes() for p in chunk)), token=token)
        assert response.status_code == 200, response.content
    study = UnmatchedStudy.objects.get()
    assert study.instances.count() == 3
    assert (
        not ScanUpload.objects.exists()
        and not Job.objects.exclude(kind="registry.validate").exists()
    )


def test_concurrent_requests_for_one_study_make_one_upload(transactional_db, users, tmp_path):
    patient = patient_for(
        users.clinician_a,
        mrn="STOW-0001",
        family_name="Curie",
        given_name="Marie",
        birth_date=datetime.date(1967, 11, 7),
    )
    token = dicomweb_sender_issue(name="Busy PACS").token
    paths = curie_study(tmp_path, count=4)
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def send(chunk: list[Path]) -> None:
        try:
            data = body(*(p.read_bytes() for p in chunk))
            barrier.wait(timeout=30)
            codes.append(stow(Client(), data, token=token).status_code)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=send, args=(c,)) for c in (paths[:2], paths[2:])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert codes == [200, 200]
    upload = ScanUpload.objects.get(patient=patient)
    assert upload.scans.count() == 4
    job = Job.objects.get(kind="diagnosis.inference", patient=patient)
    assert job.status == Job.Status.QUEUED


def test_a_non_dicom_part_and_a_non_image_fail_with_their_reasons(client, token, curie, tmp_path):
    good = curie_study(tmp_path, count=1)[0]
    response = stow(
        client,
        body(good.read_bytes(), b"this is not DICOM at all", sr_document()),
        token=token,
    )
    assert response.status_code == 202, response.content
    answer = json.loads(response.content)
    assert [i[SOP_INSTANCE]["Value"][0] for i in items(answer, REFERENCED)] == [uids(good)[1]]
    reasons = [i[REASON]["Value"][0] for i in items(answer, FAILED)]
    assert reasons == [0xC000, 0x0122]
    assert items(answer, FAILED)[1][SOP_CLASS]["Value"] == ["1.2.840.10008.5.1.4.1.1.88.11"]
    assert Scan.objects.filter(patient=curie).count() == 1


def test_two_studies_in_one_request_make_one_upload_and_job_each(client, token, curie, tmp_path):
    first = curie_study(tmp_path / "a", count=2)
    second = curie_study(tmp_path / "b", count=1)
    response = stow(client, body(*(p.read_bytes() for p in [*first, *second])), token=token)
    assert response.status_code == 200, response.content
    assert ScanUpload.objects.filter(patient=curie).count() == 2
    assert sorted(u.scans.count() for u in ScanUpload.objects.all()) == [1, 2]
    assert Job.objects.filter(kind="diagnosis.inference", patient=curie).count() == 2
    assert AuditEvent.objects.filter(actor_username="dicomweb:Radiology PACS").count() == 1


def test_a_part_of_another_study_than_the_urls_fails_and_nothing_is_stored(
    client, token, curie, tmp_path
):
    paths = curie_study(tmp_path, count=2)
    url = f"{URL}/{generate_uid()}"
    response = stow(client, body(*(p.read_bytes() for p in paths)), token=token, url=url)
    assert response.status_code == 409, response.content
    answer = json.loads(response.content)
    assert [i[REASON]["Value"][0] for i in items(answer, FAILED)] == [0xA900, 0xA900]
    assert not ScanUpload.objects.exists() and not UnmatchedStudy.objects.exists()
    same = f"{URL}/{pydicom.dcmread(paths[0]).StudyInstanceUID}"
    assert (
        stow(client, body(*(p.read_bytes() for p in paths)), token=token, url=same).status_code
        == 200
    )


def test_an_instance_the_intake_refuses_gets_a_standard_reason(client, token, curie, tmp_path):
    path = curie_study(tmp_path, count=1)[0]
    ds = pydicom.dcmread(path)
    ds.BurnedInAnnotation = "YES"
    ds.save_as(path, enforce_file_format=True)
    response = stow(client, body(path.read_bytes()), token=token)
    assert response.status_code == 409
    assert [i[REASON]["Value"][0] for i in items(json.loads(response.content), FAILED)] == [0x0110]
    assert not Scan.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        b"no boundary anywhere in this body",
        f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\nunterminated".encode(),
        f"--{BOUNDARY}\r\nContent-Type: application/dicom".encode(),
        f"--{BOUNDARY}--\r\n".encode(),
    ],
    ids=["no-boundary", "no-closing-boundary", "headers-cut", "no-part"],
)
def test_a_malformed_multipart_body_is_400(client, token, data):
    response = stow(client, data, token=token)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert not ScanUpload.objects.exists() and not UnmatchedStudy.objects.exists()


def test_a_multipart_type_without_boundary_is_400(client, token):
    ctype = 'multipart/related; type="application/dicom"'
    assert stow(client, body(b"x"), token=token, ctype=ctype).status_code == 400


@pytest.mark.parametrize(
    "ctype",
    [
        "application/dicom",
        "application/json",
        'multipart/related; type="application/dicom+xml"; boundary=x',
    ],
)
def test_another_content_type_is_415(client, token, ctype):
    response = stow(client, b"{}", token=token, ctype=ctype)
    assert response.status_code == 415
    assert b"multipart/related" in response.content or b"application/dicom" in response.content


def test_a_missing_unknown_or_revoked_token_is_401(client, token, tmp_path):
    data = body(b"x")
    missing = client.post(URL, data=data, content_type=CTYPE)
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"] == 'Bearer realm="medai-dicomweb"'
    assert stow(client, data, token="mdw_00000000_nope").status_code == 401
    assert stow(client, data, token=token[:-2] + "xx").status_code == 401
    sender = DicomWebSender.objects.get()
    dicomweb_sender_revoke(sender=sender)
    assert dicomweb_sender_authenticate(token) is None
    revoked = stow(client, data, token=token)
    assert revoked.status_code == 401 and revoked.has_header("WWW-Authenticate")


def test_a_chunked_body_without_length_is_411_and_an_empty_one_400(client, token):
    # Django's test server, like runserver, leaves the chunks to the application.
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}", "CONTENT_TYPE": CTYPE}
    chunked = client.generic(
        "POST", URL, b"", CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked", **auth
    )
    assert chunked.status_code == 411 and b"ChunkedTransfers" in chunked.content
    assert client.generic("POST", URL, b"", CONTENT_LENGTH="", **auth).status_code == 400


def test_a_dechunked_body_is_read_up_to_the_cap(client, token, curie, settings, tmp_path):
    """A server that de-chunks (wsgi.input_terminated) hands over a body of unknown length:
    it is stored, or refused with 413 once more than the cap has been read."""
    data = body(*(p.read_bytes() for p in curie_study(tmp_path)))
    dechunked = {
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "CONTENT_TYPE": CTYPE,
        "CONTENT_LENGTH": "",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input_terminated": True,
    }
    settings.MEDAI_DICOMWEB_MAX_REQUEST_BYTES = len(data) - 1
    # A plain stream, as a server's: the test client's own refuses reads past its length.
    over = client.generic("POST", URL, data, **dechunked, **{"wsgi.input": io.BytesIO(data)})
    assert over.status_code == 413, over.content
    assert b"limit for one STOW-RS request" in over.content
    assert not ScanUpload.objects.exists()
    settings.MEDAI_DICOMWEB_MAX_REQUEST_BYTES = len(data)
    stored = client.generic("POST", URL, data, **dechunked, **{"wsgi.input": io.BytesIO(data)})
    assert stored.status_code == 200, stored.content
    assert Scan.objects.filter(upload__patient=curie).count() == 2


def test_gunicorn_reads_a_chunked_body(transactional_db, users, tmp_path):
    patient = patient_for(
        users.clinician_a,
        mrn="STOW-0001",
        family_name="Curie",
        given_name="Marie",
        birth_date=datetime.date(1967, 11, 7),
    )
    token = dicomweb_sender_issue(name="Chunky PACS").token
    data = body(*(p.read_bytes() for p in curie_study(tmp_path / "study", count=3)))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": CTYPE}

    def post_chunked(base: str, payload: bytes) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=60)
        try:
            chunks = (payload[i : i + 4096] for i in range(0, len(payload), 4096))
            connection.request("POST", URL, body=chunks, headers=headers, encode_chunked=True)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    with gunicorn_running(
        tmp_path / "web",
        MEDAI_DICOM_TASK=TASK,
        MEDAI_DICOMWEB_RATE_LIMIT="off",
        MEDAI_DICOMWEB_MAX_MB="1",
    ) as base:
        status, answer = post_chunked(base, data)
        assert status == 200, answer
        assert len(items(json.loads(answer), REFERENCED)) == 3
        # Past the cap (1 MB here): refused while streaming, nothing stored.
        too_big = body(b"\0" * (1 << 20))
        status, answer = post_chunked(base, too_big)
        assert status == 413 and b"larger than the 1 MB limit" in answer, answer
    upload = ScanUpload.objects.get(patient=patient)
    assert Scan.objects.filter(upload=upload).count() == 3
    assert ScanUpload.objects.count() == 1
    assert Job.objects.filter(kind="diagnosis.inference", patient=patient).count() == 1


def test_a_signed_in_person_without_a_token_is_401(client, users):
    client.force_login(users.clinician_a)
    assert client.post(URL, data=body(b"x"), content_type=CTYPE).status_code == 401


def test_a_body_over_the_cap_is_413_before_it_is_read(client, token, settings):
    settings.MEDAI_DICOMWEB_MAX_REQUEST_BYTES = 1 << 20
    response = stow(client, body(b"\0" * (1 << 20)), token=token)
    assert response.status_code == 413
    assert b"larger than the 1 MB limit for one STOW-RS request" in response.content
    assert not AuditEvent.objects.filter(actor_username__startswith="dicomweb:").exists()


def test_a_part_over_the_per_file_cap_is_413(client, token, settings):
    settings.DIAGNOSIS_MAX_FILE_BYTES = 1000
    response = stow(client, body(b"\0" * 1001), token=token)
    assert response.status_code == 413
    assert not ScanUpload.objects.exists() and not UnmatchedStudy.objects.exists()


def test_the_rate_limit_applies_per_sender(client, token, settings):
    settings.MEDAI_DICOMWEB_RATE_LIMIT = "2/min"
    from django.core.cache import cache

    cache.clear()
    codes = [stow(client, body(b"x"), token=token).status_code for _ in range(3)]
    assert codes == [409, 409, 429]


def test_the_management_command_issues_a_token_that_works(db, capsys):
    call_command("dicomweb_sender", "issue", "CT scanner 2")
    out = capsys.readouterr().out
    token = out.split("Token (shown once, keep it in the PACS only): ")[1].strip()
    sender = dicomweb_sender_authenticate(token)
    assert sender is not None and sender.name == "CT scanner 2"
    assert token not in sender.token_hash and len(sender.token_hash) == 64
    call_command("dicomweb_sender", "revoke", "CT scanner 2")
    assert dicomweb_sender_authenticate(token) is None


def test_the_admin_issues_a_token_once_for_superusers_only(users, client_for, django_user_model):
    it = django_user_model.objects.create_superuser("it-admin", password="x-Long-enough-1")
    client = client_for(it)
    add = "/admin/diagnosis/dicomwebsender/add/"
    response = client.post(add, {"name": "Radiology PACS"})
    assert response.status_code == 200
    token = response.context["token"]
    assert token.encode() in response.content
    assert dicomweb_sender_authenticate(token).name == "Radiology PACS"
    listing = client.get("/admin/diagnosis/dicomwebsender/")
    assert listing.status_code == 200 and token.encode() not in listing.content
    assert client.post(add, {"name": "Radiology PACS"}).status_code == 200  # name taken: the form
    assert DicomWebSender.objects.count() == 1
    sender = DicomWebSender.objects.get()
    client.post(
        "/admin/diagnosis/dicomwebsender/",
        {"action": "revoke_senders", "_selected_action": [sender.pk]},
    )
    assert dicomweb_sender_authenticate(token) is None
    # A model admin is staff but not hospital IT.
    assert client_for(users.model_admin).get(add).status_code == 403


@pytest.mark.skipif(not DICOMWEB_PLUGIN.exists(), reason="orthanc-dicomweb is not installed")
def test_orthanc_stores_a_study_over_stow_rs_in_one_upload(transactional_db, users, tmp_path):
    if not orthanc_available():
        pytest.fail("Orthanc is missing: bin/test installs it (apt-get install orthanc)")
    patient = patient_for(
        users.clinician_a,
        mrn="STOW-0042",
        family_name="Lovelace",
        given_name="Ada",
        birth_date=datetime.date(1915, 12, 10),
    )
    token = dicomweb_sender_issue(name="Orthanc").token
    paths = study_files(
        tmp_path / "study",
        patient_id="STOW-0042",
        name="LOVELACE^ADA",
        birth_date="19151210",
        count=3,
        compressed=True,
    )
    # Served as in production (gunicorn, which de-chunks), with Orthanc's default
    # ChunkedTransfers (on): the body comes without a Content-Length.
    with gunicorn_running(
        tmp_path / "web", MEDAI_DICOM_TASK=TASK, MEDAI_DICOMWEB_RATE_LIMIT="off"
    ) as base:
        servers = {
            "medai": {
                "Url": f"{base}/dicomweb/",
                "HttpHeaders": {"Authorization": f"Bearer {token}"},
            }
        }
        with orthanc_running(tmp_path / "orthanc", dicomweb_servers=servers) as pacs:
            # One STOW-RS request per instance, as Orthanc's routing sends each instance it
            # receives (this plugin's release no longer splits by StowMaxInstances).
            for instance in [pacs.upload(path)["ID"] for path in paths]:
                pacs.post("/dicom-web/servers/medai/stow", {"Resources": [instance]})
        log = (tmp_path / "web" / "gunicorn.log").read_text()
        assert log.count('POST /dicomweb/studies HTTP/1.1" 200') == 3, log
    upload = ScanUpload.objects.get(patient=patient)
    scans = list(Scan.objects.filter(upload=upload))
    assert len(scans) == 3
    for scan in scans:
        assert pydicom.dcmread(scan.file.path).PatientID == patient_pseudonym(patient)
        assert b"LOVELACE" not in scan.file.read()
    assert Job.objects.filter(kind="diagnosis.inference", patient=patient).count() == 1


def test_no_header_value_reaches_the_logs(client, token, curie, tmp_path, caplog, capfd):
    """pydicom warns about a malformed UI element by quoting its raw text, which here is a
    patient's name: the warning is logged, the name is not."""
    paths = curie_study(tmp_path, count=2)
    ds = pydicom.dcmread(paths[1])
    ds.add_new(0x00200052, "UI", None)  # Frame of Reference UID
    ds[0x00200052]._value = "SKLODOWSKA^MARIE^SALOMEA"
    ds.save_as(paths[1])
    assert b"SKLODOWSKA" in paths[1].read_bytes()
    # caplog's handler after the configured one: it sees each record as the logs get it.
    pydicom_logger = logging.getLogger("pydicom")
    pydicom_logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.DEBUG):
            response = stow(client, body(*(p.read_bytes() for p in paths)), token=token)
    finally:
        pydicom_logger.removeHandler(caplog.handler)
    assert response.status_code in (200, 202), response.content
    dicom_records = [r for r in caplog.records if r.name.startswith("pydicom")]
    assert any("Invalid value for VR UI" in r.getMessage() for r in dicom_records)
    for record in caplog.records:
        assert "SKLODOWSKA" not in record.getMessage(), record.getMessage()
    assert "SKLODOWSKA" not in capfd.readouterr().err
