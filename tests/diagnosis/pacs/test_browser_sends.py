"""The "Sent to PACS" block of a result in a real browser: one destination got the report and
heat-map, another could not be reached after its tries and says why; "Send again" queues it
once more. Screenshots go to MEDAI_SCREENSHOTS."""

from __future__ import annotations

import pytest

from diagnosis.models import DicomSend
from tests.diagnosis.pacs.pacs_peer import free_port, store_peer
from tests.diagnosis.pacs.test_send import classify_chest, destination_to
from tests.e2e.browser import browser_page, screenshot_dir, sign_in
from tests.platform.factories import PASSWORD

pytestmark = pytest.mark.e2e


def test_a_clinician_sees_what_reached_the_pacs_and_sends_again(
    live_server, users, chest_model, run_job, settings
):
    settings.MEDAI_DICOM_SEND_BACKOFF_SECONDS = 0
    settings.MEDAI_DICOM_SEND_TIMEOUT = 3
    with store_peer() as peer:
        destination_to(peer.port, name="Radiology PACS")
        destination_to(free_port(), name="Teaching archive", called_ae_title="TEACHING")
        prediction = classify_chest(users, run_job)
        for send in DicomSend.objects.all():
            run_job(send.job)
        assert len(peer.received) == 2
    shots = screenshot_dir()
    with browser_page() as page:
        sign_in(page, live_server.url, users.clinician_a.username, PASSWORD)
        page.goto(f"{live_server.url}/diagnosis/scans/{prediction.scan_id}/")
        block = page.locator("section[data-sends]")
        sent = block.locator("li[data-send=sent]")
        failed = block.locator("li[data-send=failed]")
        assert "Radiology PACS" in sent.inner_text() and "heat-map" in sent.inner_text()
        assert "could not be reached" in failed.inner_text()
        assert "Tried 3 times" in failed.inner_text()
        block.screenshot(path=shots / "pacs-sent-to-pacs.png")
        failed.locator("button:has-text('Send again')").click()
        page.wait_for_load_state()
        queued = page.locator("section[data-sends] li[data-send=queued]")
        assert "Teaching archive" in queued.inner_text()
        assert "Sent again by a clinician" in queued.inner_text()
        page.locator("section[data-sends]").screenshot(path=shots / "pacs-send-again.png")
        assert not page.errors, page.errors
