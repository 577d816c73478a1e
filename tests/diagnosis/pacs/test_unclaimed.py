"""Studies that resemble no care team's patient: no clinician sees them, so hospital IT
(superusers) gets a page of them with what is needed to route them, and may discard one
(audited, files deleted). Model admins, researchers and clinicians may not see the page."""

from __future__ import annotations

import datetime

import pytest
from django.core.files.storage import default_storage

from diagnosis.models import UnmatchedInstance, UnmatchedStudy
from medai_site.audit.models import AuditEvent
from tests.diagnosis.model_versions import TASK
from tests.platform.factories import UserFactory, patient_for

pytestmark = pytest.mark.django_db

PAGE = "/diagnosis/inbox/unclaimed/"


@pytest.fixture(autouse=True)
def _task(settings):
    settings.MEDAI_DICOM_TASK = TASK


@pytest.fixture
def it_admin():
    return UserFactory(username="it_admin", is_staff=True, is_superuser=True)


def test_hospital_it_sees_an_unclaimed_study_with_its_routing_facts(
    users, client_for, it_admin, waiting
):
    # Nobody in any care team resembles ROE^JANE (EXT-77, born 1980-02-02).
    patient_for(users.clinician_a, family_name="Smith", birth_date=datetime.date(1970, 1, 1))
    assert b"ROE, JANE" not in client_for(users.clinician_a).get("/diagnosis/inbox/").content
    response = client_for(it_admin).get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert "ROE, JANE" in html and "EXT-77" in html and "PACS" in html
    assert "born 2 Feb 1980" in html  # the DICOM date in the site's format, not 19800202
    assert f'data-unclaimed-study="{waiting.pk}"' in html
    event = AuditEvent.objects.filter(
        action=AuditEvent.Action.PATIENT_LIST_VIEWED, actor=it_admin
    ).latest("pk")
    assert event.detail == {"page": "unclaimed studies", "shown": [waiting.pk]}


def test_a_study_a_care_team_could_claim_is_not_listed_for_it(users, client_for, it_admin, waiting):
    patient_for(users.clinician_b, family_name="Roe", birth_date=datetime.date(1980, 2, 2))
    assert b"ROE, JANE" in client_for(users.clinician_b).get("/diagnosis/inbox/").content
    html = client_for(it_admin).get(PAGE).content.decode()
    assert "ROE, JANE" not in html and "No study is waiting unclaimed" in html
    discard = client_for(it_admin).post(
        f"/diagnosis/inbox/unclaimed/{waiting.pk}/discard/", {"confirm": "on"}
    )
    assert discard.status_code == 404  # a clinician's to assign, not IT's to discard
    waiting.refresh_from_db()
    assert waiting.status == UnmatchedStudy.Status.WAITING


@pytest.mark.parametrize("who", ["clinician_a", "researcher", "model_admin"])
def test_other_roles_may_neither_see_nor_discard(users, client_for, waiting, who):
    client = client_for(getattr(users, who))
    assert client.get(PAGE).status_code == 403
    url = f"/diagnosis/inbox/unclaimed/{waiting.pk}/discard/"
    assert client.post(url, {"confirm": "on"}).status_code == 403
    waiting.refresh_from_db()
    assert waiting.status == UnmatchedStudy.Status.WAITING and waiting.patient_id == "EXT-77"


def test_hospital_it_discards_a_study_its_files_go_and_it_is_audited(
    client_for, it_admin, waiting, django_capture_on_commit_callbacks
):
    files = [i.file.name for i in UnmatchedInstance.objects.filter(study=waiting)]
    assert files and all(default_storage.exists(name) for name in files)
    client = client_for(it_admin)
    url = f"/diagnosis/inbox/unclaimed/{waiting.pk}/discard/"
    unconfirmed = client.post(url)
    assert unconfirmed.status_code == 400
    assert f"Tick the box beside study #{waiting.pk}" in unconfirmed.content.decode()
    assert all(default_storage.exists(name) for name in files)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"confirm": "on"})
    assert response.status_code == 302 and response.url == PAGE
    assert f"Study #{waiting.pk} discarded; {len(files)} files deleted" in (
        client.get(PAGE).content.decode()
    )
    waiting.refresh_from_db()
    assert waiting.status == UnmatchedStudy.Status.DISCARDED
    assert (waiting.patient_id, waiting.patient_name, waiting.birth_date) == ("", "", "")
    assert not UnmatchedInstance.objects.filter(study=waiting).exists()
    assert not any(default_storage.exists(name) for name in files)
    event = AuditEvent.objects.get(
        action=AuditEvent.Action.RECORD_CHANGED,
        actor=it_admin,
        object_type="diagnosis.UnmatchedStudy",
    )
    assert event.detail["discarded"] is True and event.detail["instances"] == len(files)
    # Discarding again is refused with a message and changes nothing.
    again = client.post(url, {"confirm": "on"})
    assert again.status_code == 404
    assert client.get(url).status_code == 405
