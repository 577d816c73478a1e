"""The scan upload against hostile files, request-wide pixel bounds and a full disk: each
bad file gets a 4xx with a specific message and leaves no row and no file behind."""

from __future__ import annotations

from html import unescape

import pytest

from diagnosis.models import Scan, ScanUpload
from medai_site.jobs.models import Job
from tests import hostile_files as hostile
from tests.diagnosis.files import chest_png, upload
from tests.diagnosis.model_versions import TASK
from tests.platform.factories import patient_for

pytestmark = pytest.mark.django_db

HOSTILE_SCANS = [
    ("truncated.png", lambda: hostile.png((256, 256))[:300], "PNG file is incomplete"),
    ("huge-declared.png", hostile.png_huge_declared, "above this server's limit"),
    ("bomb.png", hostile.png_bomb, "above this server's limit"),
    ("huge-declared.dcm", hostile.dicom_huge_declared, "above this server's limit"),
    ("truncated.dcm", hostile.dicom_truncated_pixels, "incomplete"),
    ("deep.dcm", hostile.dicom_deep_sequences, "nests sequences more than 32 levels"),
    ("polyglot-png.dcm", lambda: hostile.polyglot(hostile.png()), "no Transfer Syntax UID"),
    ("polyglot-jpeg.png", lambda: hostile.polyglot(hostile.jpeg()), "no Transfer Syntax UID"),
    ("page.png", lambda: hostile.HTML, "plain text, not an image"),
    ("drawing.jpg", lambda: hostile.SVG, "plain text, not an image"),
    ("run.dcm", lambda: hostile.SCRIPT, "plain text, not an image"),
    ("bomb.dcm.gz", lambda: hostile.gzip_bomb(64 * 1024 * 1024), "gzip-compressed"),
    ("noise.dcm", hostile.garbage, "not a DICOM, PNG or JPEG image"),
    ("empty.png", lambda: b"", "empty"),
]


def _post(client, patient, files):
    return client.post(f"/diagnosis/patients/{patient.pk}/scans/", {"task": TASK, "files": files})


def _scan_files(settings) -> list[str]:
    """Files under MEDIA_ROOT other than the model artifact the fixture stored."""
    return [f for f in hostile.files_under(settings.MEDIA_ROOT) if not f.startswith("models/")]


def _nothing_stored(settings) -> None:
    assert not Scan.objects.exists()
    assert not ScanUpload.objects.exists()
    # The fixture's model registration queued its validation job; nothing else.
    assert not Job.objects.exclude(kind="registry.validate").exists()
    assert _scan_files(settings) == []


@pytest.mark.parametrize(
    ("name", "make", "message"), HOSTILE_SCANS, ids=[h[0] for h in HOSTILE_SCANS]
)
def test_hostile_scan_is_refused_with_its_reason_and_leaves_nothing(
    users, active_model, client_for, settings, name, make, message
):
    patient = patient_for(users.clinician_a)
    response = _post(client_for(users.clinician_a), patient, [upload(name, make())])
    assert response.status_code == 400
    html = unescape(response.content.decode())
    assert name in html and message in html
    _nothing_stored(settings)


def test_deeply_nested_file_is_refused_while_the_others_go_through(users, active_model, client_for):
    patient = patient_for(users.clinician_a)
    client = client_for(users.clinician_a)
    response = _post(
        client,
        patient,
        [upload("deep.dcm", hostile.dicom_deep_sequences()), upload("chest.png", chest_png())],
    )
    assert response.status_code == 302
    html = unescape(client.get(response["Location"]).content.decode())
    assert "1 file accepted" in html
    assert "deep.dcm" in html and "nests sequences more than 32 levels" in html
    assert list(Scan.objects.values_list("original_name", flat=True)) == ["chest.png"]


def test_upload_decoding_more_than_the_request_bound_is_a_413_storing_nothing(
    users, active_model, client_for, settings
):
    # Five 512x512 grey PNGs of a few hundred bytes each decode to 262,144 values apiece.
    settings.DIAGNOSIS_MAX_REQUEST_PIXELS = 1_000_000
    patient = patient_for(users.clinician_a)
    files = [upload(f"{i}.png", hostile.png((512, 512), value=i)) for i in range(5)]
    response = _post(client_for(users.clinician_a), patient, files)
    assert response.status_code == 413
    html = unescape(response.content.decode())
    assert "above this server's limit for one upload" in html and "smaller batches" in html
    _nothing_stored(settings)


def test_upload_within_the_request_bound_is_stored(users, active_model, client_for, settings):
    settings.DIAGNOSIS_MAX_REQUEST_PIXELS = 1_100_000
    patient = patient_for(users.clinician_a)
    files = [upload(f"{i}.png", hostile.png((512, 512), value=i)) for i in range(4)]
    response = _post(client_for(users.clinician_a), patient, files)
    assert response.status_code == 302
    assert Scan.objects.count() == 4


def test_full_disk_answers_507_and_leaves_no_row_and_no_partial_file(
    users, active_model, client_for, settings, monkeypatch
):
    patient = patient_for(users.clinician_a)
    hostile.disk_full_save(monkeypatch)
    response = _post(
        client_for(users.clinician_a),
        patient,
        [upload("a.png", chest_png()), upload("b.png", chest_png())],
    )
    assert response.status_code == 507
    assert "storage is full" in response.content.decode()
    _nothing_stored(settings)


def test_a_failed_prediction_leaves_no_heat_map_file(
    users, active_model, settings, monkeypatch, run_job
):
    from diagnosis.models import Prediction
    from diagnosis.services import scan_upload
    from medai_site.jobs import services as job_services

    patient = patient_for(users.clinician_a)
    outcome = scan_upload(
        patient=patient,
        uploaded_by=users.clinician_a,
        task=TASK,
        files=[upload("a.png", chest_png()), upload("b.png", chest_png())],
    )
    before = hostile.files_under(settings.MEDIA_ROOT)

    def fail(**kwargs):
        raise RuntimeError("database went away while finishing")

    # Both heat-maps are written, then the job's finishing transaction fails.
    monkeypatch.setattr(job_services, "job_mark_succeeded", fail)
    assert run_job(outcome.job).status != Job.Status.SUCCEEDED
    assert not Prediction.objects.exists()
    assert hostile.files_under(settings.MEDIA_ROOT) == before
