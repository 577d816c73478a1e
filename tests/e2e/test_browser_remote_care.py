"""Remote care in chromium: a device posts deteriorating vital signs, the server raises the
alert, it appears on the clinician's live board without a reload, and the clinician
acknowledges it. Then a patient, invited to the portal, sends a photo to the care team, and
the clinician sees it as unread, reads it and replies."""

from __future__ import annotations

import io
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from PIL import Image

from tests.e2e.browser import browser_page, screenshot_dir, sign_in
from tests.e2e.layout import check_widths

pytestmark = pytest.mark.e2e


def _vitals(minutes_ago: int, **values: object) -> dict:
    taken = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return {
        "taken_at": taken.isoformat(),
        "systolic_bp": 124,
        "diastolic_bp": 78,
        "temperature": 37.0,
        "consciousness": "A",
        "on_oxygen": False,
        **values,
    }


def test_deterioration_alert_reaches_the_board_and_is_acknowledged(embedded_stack):
    base = embedded_stack.base_url
    shots = screenshot_dir()
    with browser_page() as page:
        sign_in(page, base, "dr.adams", embedded_stack.passwords["dr.adams"])
        page.goto(base + "/patients/")
        page.click("table.table a >> nth=0")
        patient_name = page.locator("h1").first.inner_text()
        page.click("text=Devices, vital signs and alerts →")
        monitoring_url = page.url
        page.fill("#id_label", "Home kit")
        page.click("button:has-text('Register a device')")
        token = page.locator("code.token").inner_text().strip()
        assert token.startswith("mdv_")

        # The board is open before anything arrives; it must pick the alert up by itself.
        page.goto(base + "/remote-care/board/")
        row = page.locator("tr[data-patient]").filter(has_text=patient_name.split(",")[0])

        # A patient at home getting worse over an hour: normal, then rising pulse and
        # breathing, falling saturation, finally an emergency score.
        readings = [
            _vitals(60, heart_rate=78, respiratory_rate=14, spo2=97),
            _vitals(40, heart_rate=96, respiratory_rate=19, spo2=95),
            _vitals(20, heart_rate=118, respiratory_rate=24, spo2=93),
            _vitals(1, heart_rate=132, respiratory_rate=27, spo2=90, temperature=38.6),
        ]
        response = requests.post(
            base + "/remote-care/api/v1/observations/",
            json={"observations": readings},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["stored"] == 4, body
        assert any(a["level"] == "EMERGENCY" for a in body["alerts"]), body

        # No reload: the board's own refresh brings the patient up with the alert, among the
        # patients with an open emergency alert (other browser tests on this stack may have
        # left one), above every other patient.
        row.first.locator("[data-alerts]").wait_for(timeout=45_000)
        top = row.first
        ranked = page.locator("tr[data-patient]").evaluate_all(
            "rows => rows.map(r => [r.dataset.patient, r.className])"
        )
        mine = [pk for pk, _ in ranked].index(top.get_attribute("data-patient"))
        assert all("status-failed" in cls for _, cls in ranked[:mine]), ranked
        assert "open" in top.locator("[data-alerts]").inner_text()
        assert "status-failed" in (top.get_attribute("class") or "")
        page.screenshot(path=shots / "remote-board-alert.png", full_page=True)
        check_widths(page, "board-alert")

        top.locator("[data-alerts]").click()
        page.wait_for_url(re.compile(r".*/remote-care/patients/\d+/#alerts$"))
        assert page.url.split("#")[0] == monitoring_url.split("#")[0]
        alerts = page.locator("#alerts tbody tr")
        assert "emergency" in alerts.first.inner_text()
        alerts.first.locator("button:has-text('Acknowledge')").click()
        page.wait_for_selector(".msg-success")
        assert "Acknowledged" in page.locator("#alerts tbody tr").first.inner_text()
        page.screenshot(path=shots / "remote-alert-acknowledged.png", full_page=True)
        # The patient's monitoring page: the model risk and NEWS2 chart, the alerts.
        check_widths(page, "patient-monitoring")
        assert not page.errors, page.errors


def _photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (190, 110, 90)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_patient_portal_message_with_photo_reaches_the_clinician(embedded_stack, tmp_path):
    base = embedded_stack.base_url
    shots = screenshot_dir()
    photo = tmp_path / "ankle.jpg"
    photo.write_bytes(_photo())
    with browser_page() as clinician:
        sign_in(clinician, base, "dr.adams", embedded_stack.passwords["dr.adams"])
        clinician.goto(base + "/patients/")
        clinician.click("table.table a >> nth=1")
        clinician.click("text=Devices, vital signs and alerts →")
        clinician.fill("#id_username", "portal-e2e")
        clinician.click("button:has-text('Open portal account')")
        link = clinician.locator("[data-portal-link]").inner_text().strip()
        assert "/portal/activate/" in link
        assert not clinician.errors, clinician.errors

    # One Playwright session at a time: the patient's browser, then the clinician's again.
    with browser_page() as patient:
        patient.goto(link)
        patient.fill("#id_new_password1", "Quiet-harbour-5193")
        patient.fill("#id_new_password2", "Quiet-harbour-5193")
        patient.click("button:has-text('Set password and sign in')")
        patient.wait_for_url(base + "/portal/")
        assert patient.locator("h1").inner_text().startswith("Hello")
        patient.click("text=Write to your care team")
        patient.fill("#id_subject", "Swollen ankle")
        patient.fill("#id_body", "It has been swollen since yesterday.")
        patient.set_input_files("#id_photo", str(photo))
        patient.get_by_role("button", name="Send", exact=True).click()
        patient.wait_for_selector(".bubble img")
        patient.screenshot(path=shots / "portal-thread.png", full_page=True)
        assert not patient.errors, patient.errors
        # The patient cannot wander into the clinicians' pages.
        assert patient.goto(base + "/patients/").status == 403

    with browser_page() as clinician:
        sign_in(clinician, base, "dr.adams", embedded_stack.passwords["dr.adams"])
        badge = clinician.locator("nav.mainnav .nav-badge")
        assert badge.inner_text() == "1"
        clinician.click("nav.mainnav >> text=Messages")
        clinician.click("text=Swollen ankle")
        assert "since yesterday" in clinician.locator(".thread").inner_text()
        # The photo is served (lazily, audited) from the clinician's side of the thread.
        # Polled from here: a string predicate polled in the page is evaluated there, which
        # the page's CSP (no 'unsafe-eval') refuses once the first check has failed.
        photo = clinician.locator(".bubble img")
        deadline = time.monotonic() + 30
        while photo.evaluate("img => img.naturalWidth") == 0 and time.monotonic() < deadline:
            clinician.wait_for_timeout(200)
        assert photo.evaluate("img => img.naturalWidth") == 320
        clinician.fill("#id_body", "Please keep it raised; we will call you today.")
        with clinician.expect_navigation(timeout=60_000):
            # Exactly "Send": with an imaging model in service the photo also has a "Send to
            # diagnosis as a scan" button.
            clinician.get_by_role("button", name="Send", exact=True).click()
        clinician.wait_for_selector(".bubble.mine", timeout=60_000)
        assert clinician.locator("nav.mainnav .nav-badge").count() == 0
        clinician.screenshot(path=shots / "clinician-thread.png", full_page=True)
        check_widths(clinician, "thread")
        assert not clinician.errors, clinician.errors
