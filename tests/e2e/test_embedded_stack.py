"""The embedded default end to end: a real worker on the filesystem broker runs a job while
the status endpoint reports its progress."""

from __future__ import annotations

import re
import time

import pytest

from tests.e2e.sessions import login_session

pytestmark = pytest.mark.e2e

ROWS = 20_000


def big_csv() -> bytes:
    lines = ["mrn,given_name,family_name,birth_date,sex,ward"]
    lines += [
        f"E2E{i:06d},Given{i},Family{i},19{50 + i % 50}-0{1 + i % 9}-1{i % 9},"
        f"{'FM'[i % 2]},W{i % 7}"
        for i in range(ROWS)
    ]
    return ("\n".join(lines) + "\n").encode()


def test_import_job_runs_on_real_worker_with_live_progress(embedded_stack):
    session = login_session(embedded_stack, "dr.baker")
    base = embedded_stack.base_url
    response = session.post(
        base + "/patients/import/",
        data={"source": "csv", "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        files={"file": ("ward.csv", big_csv(), "text/csv")},
        headers={"Referer": base + "/patients/import/"},
        timeout=30,
    )
    assert response.status_code == 200 and "/jobs/" in response.url
    job_id = re.search(r"/jobs/(\d+)/", response.url).group(1)

    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = session.get(
            f"{base}/jobs/{job_id}/status/", headers={"X-MedAI-Poll": "1"}, timeout=10
        ).json()
        seen.append((status["status"], status["progress"], status["stage"]))
        if status["finished"]:
            break
        time.sleep(0.1)
    assert status["status"] == "succeeded", (status, seen[-5:])
    assert status["result_summary"] == f"Imported {ROWS} patients."
    intermediate = [p for s, p, _ in seen if s == "running" and 0 < p < 100]
    assert intermediate, f"no progress observed while running: {seen}"
    progress = [p for _, p, _ in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    assert status["elapsed_seconds"] > 0

    patients = session.get(f"{base}/patients/?q=E2E019999", timeout=10).text
    assert "FAMILY19999" in patients
    # Clinician A does not see clinician B's imported patients.
    other = login_session(embedded_stack, "dr.adams")
    assert "FAMILY19999" not in other.get(f"{base}/patients/?q=E2E019999", timeout=10).text


def test_the_procfiles_dicom_receiver_answers_verification(embedded_stack):
    import subprocess

    from tests.e2e.processes import wait_for
    from tests.support.dcmtk import dcmtk_tool

    def echo() -> bool:
        result = subprocess.run(
            [
                dcmtk_tool("echoscu"),
                "-aet",
                "E2E",
                "-aec",
                "MEDAI",
                "127.0.0.1",
                str(embedded_stack.dicom_port),
            ],
            capture_output=True,
            timeout=30,
            check=False,
        )
        return result.returncode == 0

    # The listener starts beside the web server; give it the same minute.
    wait_for(echo, timeout=60, message="the Procfile's DICOM receiver")
