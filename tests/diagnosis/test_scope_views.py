"""What a clinician sees of applicability: the worklist keeps out-of-scope scans apart with
their reason, the viewer says why and shows no probability or heat-map, "Score anyway" needs
a reason and is marked wherever the result is shown; the upload result names the files."""

from __future__ import annotations

import html
import re

import pytest

from diagnosis.models import Prediction, Review
from diagnosis.services import scan_upload
from medai_site.audit.models import AuditEvent
from tests.diagnosis.files import pydicom_bytes, upload
from tests.diagnosis.model_versions import TASK
from tests.diagnosis.test_scope import CT_HEAD_REASON
from tests.platform.factories import patient_for

pytestmark = pytest.mark.django_db

OVERRIDDEN = "scored outside the model's scope"


def text(response) -> str:
    return html.unescape(response.content.decode())


def rows(page: str, table: str) -> list[str]:
    body = page.split(f'data-worklist="{table}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", body, re.S)[1:]


def test_worklist_keeps_out_of_scope_apart_with_its_reason(users, mixed, client_for):
    _, _, chest, ct = mixed
    client = client_for(users.clinician_a)
    page = text(client.get("/diagnosis/worklist/"))
    event = AuditEvent.objects.filter(detail__page="imaging worklist").latest("id")
    assert sorted(event.detail["shown"]) == sorted([chest.scan_id, ct.scan_id])
    scored = rows(page, "scored")
    assert len(scored) == 1 and f"/diagnosis/scans/{chest.scan_id}/" in scored[0]
    outside = rows(page, "out_of_scope")
    assert len(outside) == 1 and f"/diagnosis/scans/{ct.scan_id}/" in outside[0]
    assert "this is a CT of the head" in outside[0] and "not scored" in outside[0]
    only = text(client.get("/diagnosis/worklist/?status=out_of_scope"))
    assert 'data-worklist="scored"' not in only and len(rows(only, "out_of_scope")) == 1
    # Clinician B sees neither.
    other = text(client_for(users.clinician_b).get("/diagnosis/worklist/?status=all"))
    assert "IM0001" not in other and 'data-worklist="out_of_scope"' not in other


def test_viewer_says_why_and_shows_no_probability_or_heatmap(users, mixed, client_for):
    _, _, _, ct = mixed
    client = client_for(users.clinician_a)
    page = text(client.get(f"/diagnosis/scans/{ct.scan_id}/"))
    assert "Outside the model's scope" in page
    assert CT_HEAD_REASON[1:] in page
    assert 'id="probabilities"' not in page and 'data-control="heatmap"' not in page
    assert "Score anyway" in page and "Save review" not in page
    frame = client.get(f"/diagnosis/scans/{ct.scan_id}/frames/0/").json()
    assert frame["heatmap"] is None
    refused = client.post(f"/diagnosis/scans/{ct.scan_id}/review/", {"label": "normal"})
    assert refused.status_code == 409 and b"outside the model's scope" in refused.content
    assert not Review.objects.exists()


def test_score_anyway_needs_a_reason_then_is_marked_everywhere(users, mixed, client_for):
    patient, outcome, _, ct = mixed
    client = client_for(users.clinician_a)
    url = f"/diagnosis/scans/{ct.scan_id}/score-anyway/"
    blank = client.post(url, {"reason": "   "})
    assert blank.status_code == 400
    assert b"Say why the scan should be scored outside the model" in blank.content
    assert Prediction.objects.get(pk=ct.pk).override_at is None
    # Another care team's clinician cannot, and learns nothing about the scan.
    assert client_for(users.clinician_b).post(url, {"reason": "x"}).status_code == 404
    done = client.post(url, {"reason": "Lung apices visible on the scout"})
    assert done.status_code == 302
    again = client.post(url, {"reason": "twice"})
    assert again.status_code == 302
    ct.refresh_from_db()
    assert ct.override_reason == "Lung apices visible on the scout" and ct.scored
    assert AuditEvent.objects.filter(detail__has_key="scope_override").count() == 1
    viewer = text(client.get(f"/diagnosis/scans/{ct.scan_id}/"))
    assert "data-override" in viewer and OVERRIDDEN in viewer
    assert "Not scored:" not in viewer and "This model reads chest radiographs" in viewer
    assert 'id="probabilities"' in viewer and "Save review" in viewer
    assert client.get(f"/diagnosis/scans/{ct.scan_id}/frames/0/").json()["heatmap"]
    worklist = text(client.get("/diagnosis/worklist/"))
    assert OVERRIDDEN in rows(worklist, "out_of_scope")[0]
    assert len(rows(worklist, "scored")) == 1  # still never sorted by risk with the others
    scans = text(client.get(f"/diagnosis/patients/{patient.pk}/scans/"))
    assert OVERRIDDEN in scans
    timeline = text(client.get(f"/patients/{patient.pk}/"))
    assert "scored outside the model's scope" in timeline
    assert "outside its scope, not scored" in timeline
    monitoring = text(client.get("/diagnosis/monitoring/"))
    assert "scored outside the model's scope" in monitoring
    review = client.post(f"/diagnosis/scans/{ct.scan_id}/review/", {"label": "normal"})
    assert review.status_code == 302 and Review.objects.get().prediction_id == ct.pk


def test_upload_result_lists_out_of_scope_files_and_why(users, mixed, client_for):
    patient, outcome, _, _ = mixed
    page = text(
        client_for(users.clinician_a).get(
            f"/diagnosis/patients/{patient.pk}/scans/?upload={outcome.upload.pk}"
        )
    )
    assert "1 scored, 1 outside the model's scope" in page
    item = page.split("data-out-of-scope-file>", 1)[1].split("</li>", 1)[0]
    assert "IM0001" in item and "this is a CT of the head" in item


def test_viewer_says_plainly_when_scope_was_not_checked(users, legacy_model, client_for, run_job):
    patient = patient_for(users.clinician_a)
    outcome = scan_upload(
        patient=patient,
        uploaded_by=users.clinician_a,
        task=TASK,
        files=[upload("mr.dcm", pydicom_bytes("emri_small.dcm"))],
    )
    run_job(outcome.job)
    client = client_for(users.clinician_a)
    page = text(client.get(f"/diagnosis/scans/{outcome.scans[0].pk}/"))
    assert "Scope not checked: this model version has no out-of-distribution detector" in page
    assert "scope not checked" in text(client.get("/diagnosis/worklist/"))


def test_monitoring_counts_out_of_scope_per_version(users, mixed, client_for):
    page = text(client_for(users.model_admin).get("/diagnosis/monitoring/"))
    row = re.search(r"<tr data-scope-version=[^>]*>", page).group(0)
    assert 'data-scans="2"' in row and 'data-flagged="1"' in row
    assert "1 (50%)" in page
    assert 'id="scope-time"' in page
    assert "IM0001" not in page  # counts only, no file or patient
