"""A study sent over DICOM to the Procfile's receiver whose Patient ID matches no MRN: a
clinician with a patient of the same name and birth date finds it in Unmatched studies in a
real browser, assigns it to that patient, and lands on the patient's scans with the
classification queued."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.diagnosis.pacs.studies import study_files
from tests.e2e.browser import browser_page, screenshot_dir, sign_in
from tests.e2e.processes import ROOT
from tests.support.dcmtk import dcmtk_tool

pytestmark = pytest.mark.e2e


def test_an_unmatched_study_is_assigned_in_the_browser(embedded_stack, tmp_path):
    stack = embedded_stack
    base = stack.base_url
    # The inbox shows a study only to clinicians with a patient it could be: take one of
    # dr.adams's patients' name and birth date, under a Patient ID MedAI does not know.
    env = dict(stack.env)
    found = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c"]
        + [
            "from medai_site.patients.models import Patient; "
            "p = Patient.objects.filter(memberships__user__username='dr.adams').first(); "
            "print(p.family_name.upper() + '^' + p.given_name, p.birth_date.strftime('%Y%m%d'))"
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    name, born = found.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    paths = study_files(tmp_path, patient_id="EXT-E2E-1", name=name, birth_date=born)
    sent = subprocess.run(
        [
            dcmtk_tool("storescu"),
            "-aet",
            "PACS1",
            "-aec",
            "MEDAI",
            "127.0.0.1",
            str(stack.dicom_port),
        ]
        + [str(p) for p in paths],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert sent.returncode == 0, sent.stderr
    shots = screenshot_dir()
    with browser_page() as page:
        sign_in(page, base, "dr.adams", stack.passwords["dr.adams"])
        # The receiver files the study a few seconds after the sender lets go of it (longer
        # while the stack's workers are busy with what earlier browser tests left them).
        deadline = time.monotonic() + 180
        while True:
            page.goto(base + "/diagnosis/inbox/")
            if page.locator("tr[data-unmatched]", has_text="EXT-E2E-1").count():
                break
            assert time.monotonic() < deadline, "the study never reached the inbox"
            time.sleep(1)
        row = page.locator("tr[data-unmatched]", has_text="EXT-E2E-1")
        assert "No patient has this Patient ID" in row.inner_text()
        page.screenshot(path=shots / "pacs-unmatched-inbox.png", full_page=True)
        row.locator("a:has-text('Assign')").click()
        page.select_option("#id_patient", index=1)
        page.check("#id_confirm")
        page.screenshot(path=shots / "pacs-unmatched-assign.png", full_page=True)
        page.click("button:has-text('Assign')")
        page.wait_for_url("**/scans/?upload=*")
        # The page reloads itself once the classification job ends (and the one-time notice
        # "Study assigned" goes with that reload): wait for what both loads show, the
        # upload's outcome.
        page.wait_for_selector("#upload-outcome", state="attached")
        page.screenshot(path=shots / "pacs-assigned-scans.png", full_page=True)
        page.goto(base + "/diagnosis/inbox/")
        assert page.locator("tr[data-unmatched]", has_text="EXT-E2E-1").count() == 0
        assert not page.errors, page.errors
