"""Media files: no partial or orphan file outlives a failed write, a rolled-back transaction
or a killed process; a full disk is a 507 with a message."""

from __future__ import annotations

import errno
import json
import os
import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import transaction
from django.test import RequestFactory

from diagnosis.models import Scan
from medai_site.core.media import media_folders, media_writes
from medai_site.core.middleware import StorageFullMiddleware
from tests import hostile_files as hostile
from tests.diagnosis.factories import ScanUploadFactory
from tests.platform.factories import patient_for

pytestmark = pytest.mark.django_db


def _scan(users, patient):
    upload = ScanUploadFactory(patient=patient, uploaded_by=users.clinician_a)
    return Scan(
        patient=patient,
        upload=upload,
        uploaded_by=users.clinician_a,
        kind="png",
        sha256="0" * 64,
        rows=4,
        cols=4,
    )


def test_a_failed_block_deletes_its_files_including_a_partial_write(users, settings, monkeypatch):
    scan = _scan(users, patient_for(users.clinician_a))
    # noqa below: the raise may come from any statement of the block, which is what is tested
    with pytest.raises(OSError), media_writes() as writes, transaction.atomic():  # noqa: PT012
        writes.save(scan.file, "scan", ContentFile(b"x" * 1000))
        hostile.disk_full_save(monkeypatch)
        writes.save(scan.display, "display", ContentFile(b"y" * 1000))
    assert hostile.files_under(settings.MEDIA_ROOT) == []


def test_files_of_a_nested_block_go_when_the_outer_block_fails(users, settings):
    scan = _scan(users, patient_for(users.clinician_a))
    with pytest.raises(RuntimeError), media_writes():  # noqa: PT012 (a block under test)
        with media_writes() as inner:
            inner.save(scan.file, "scan", ContentFile(b"x"))
        assert default_storage.exists(scan.file.name)
        raise RuntimeError("the outer transaction failed to commit")
    assert hostile.files_under(settings.MEDIA_ROOT) == []


def _age(name: str, hours: float) -> None:
    when = time.time() - hours * 3600
    os.utime(default_storage.path(name), (when, when))


def test_sweep_deletes_old_unreferenced_files_only(users, settings):
    """What a killed upload leaves behind (files written, transaction never committed) is
    removed once older than the grace period; referenced, recent and foreign files stay."""
    assert {"scans/", "predictions/", "messages/", "drugs/uploads/"} <= set(media_folders())
    scan = _scan(users, patient_for(users.clinician_a))
    scan.file.save("scan", ContentFile(b"kept"), save=False)
    scan.display.save("display", ContentFile(b"kept"), save=False)
    scan.save()
    orphans = [
        default_storage.save("scans/killed-request.png", ContentFile(b"orphan")),
        default_storage.save("scans/display/killed-request.npz", ContentFile(b"orphan")),
        default_storage.save("predictions/failed.npz", ContentFile(b"orphan")),
        default_storage.save("drugs/uploads/killed.bin", ContentFile(b"orphan")),
    ]
    recent = default_storage.save("scans/still-uploading.png", ContentFile(b"in flight"))
    foreign = default_storage.save("models/t/v1.bin", ContentFile(b"not a registered folder"))
    for name in [*orphans, scan.file.name, scan.display.name, foreign]:
        _age(name, 10)
    _age(recent, 1)

    call_command("media_sweep", "--dry-run", stdout=open(os.devnull, "w"))
    assert all(default_storage.exists(n) for n in orphans)

    call_command("media_sweep", "--grace-hours", "6", stdout=open(os.devnull, "w"))
    assert not any(default_storage.exists(n) for n in orphans)
    for name in (scan.file.name, scan.display.name, recent, foreign):
        assert default_storage.exists(name)


def test_the_periodic_sweep_task_runs_the_same_sweep(users, settings):
    from medai_site.core.tasks import media_sweep

    orphan = default_storage.save("scans/old.png", ContentFile(b"orphan"))
    _age(orphan, settings.MEDAI_ORPHAN_MEDIA_GRACE.total_seconds() / 3600 + 1)
    assert media_sweep() == 1 and not default_storage.exists(orphan)
    assert "media-sweep" in settings.CELERY_BEAT_SCHEDULE


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_full_disk_is_a_507_with_a_message_in_html_and_json(code):
    middleware = StorageFullMiddleware(lambda request: None)
    error = OSError(code, os.strerror(code))
    page = middleware.process_exception(RequestFactory().post("/diagnosis/x/"), error)
    assert page.status_code == 507 and b"storage is full" in page.content
    api = middleware.process_exception(
        RequestFactory().post("/x/", HTTP_ACCEPT="application/json"), error
    )
    assert api.status_code == 507
    assert "storage is full" in json.loads(api.content)["detail"]


def test_other_os_errors_are_not_disguised_as_a_full_disk():
    middleware = StorageFullMiddleware(lambda request: None)
    assert middleware.process_exception(RequestFactory().get("/"), OSError(errno.EIO, "")) is None
