"""Photos sent in messages against hostile files and a full disk: a 4xx (or 507) with a
specific message, and no thread, no message and no file left behind."""

from __future__ import annotations

from html import unescape

import pytest
from django.urls import reverse

from medai_site.patients.services import portal_account_create
from remote_care.models import Message, Thread
from tests import hostile_files as hostile
from tests.diagnosis.files import upload
from tests.platform.factories import patient_for
from tests.support.clients import login

pytestmark = pytest.mark.django_db

HOSTILE_PHOTOS = [
    ("cut.jpg", lambda: hostile.jpeg((256, 256))[:600], "it may be truncated"),
    ("cut.png", lambda: hostile.png((256, 256))[:300], "it may be truncated"),
    ("huge.png", hostile.png_huge_declared, "enormous canvas"),
    ("bomb.png", hostile.png_bomb, "enormous canvas"),
    ("large.png", lambda: hostile.png_huge_declared(9000, 9000), "the limit is 60 megapixels"),
    ("poly.png", lambda: hostile.polyglot(hostile.png()), "both an image and a DICOM file"),
    ("poly.jpg", lambda: hostile.polyglot(hostile.jpeg()), "both an image and a DICOM file"),
    ("scan.jpg", hostile.dicom, "This is a DICOM file, not a photo"),
    ("page.jpg", lambda: hostile.HTML, "not a JPEG or PNG photo"),
    ("icon.png", lambda: hostile.SVG, "not a JPEG or PNG photo"),
    ("run.jpg", lambda: hostile.SCRIPT, "not a JPEG or PNG photo"),
    ("bomb.jpg.gz", lambda: hostile.gzip_bomb(64 * 1024 * 1024), "not a JPEG or PNG photo"),
    ("noise.jpg", hostile.garbage, "not a JPEG or PNG photo"),
]


@pytest.fixture
def patient_user(users):
    patient = patient_for(users.clinician_a)
    user = portal_account_create(
        patient=patient, username="pat_a", email="", created_by=users.clinician_a
    ).account.user
    return user


def _message_files(settings) -> list[str]:
    return [f for f in hostile.files_under(settings.MEDIA_ROOT) if f.startswith("messages")]


@pytest.mark.parametrize(
    ("name", "make", "message"), HOSTILE_PHOTOS, ids=[h[0] for h in HOSTILE_PHOTOS]
)
def test_hostile_photo_is_refused_with_its_reason_and_leaves_nothing(
    patient_user, settings, name, make, message
):
    response = login(patient_user).post(
        reverse("portal:thread_new"),
        {"subject": "A photo", "body": "", "photo": upload(name, make())},
    )
    assert response.status_code == 400
    assert message in unescape(response.content.decode())
    assert not Thread.objects.exists() and not Message.objects.exists()
    assert _message_files(settings) == []


def test_full_disk_answers_507_and_leaves_no_message_and_no_partial_photo(
    patient_user, settings, monkeypatch
):
    hostile.disk_full_save(monkeypatch)
    response = login(patient_user).post(
        reverse("portal:thread_new"),
        {"subject": "A photo", "body": "See this", "photo": upload("a.jpg", hostile.jpeg())},
    )
    assert response.status_code == 507
    assert "storage is full" in unescape(response.content.decode())
    assert not Thread.objects.exists() and not Message.objects.exists()
    assert _message_files(settings) == []
