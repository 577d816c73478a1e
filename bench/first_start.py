"""Time from `bin/run` on a fresh clone to the first stored prediction of an uploaded scan.

    python bench/first_start.py [--branch BRANCH] [--repo PATH] [--keep]

Clones the branch (default: the current one) of this repository into a temporary folder, links
this checkout's .venv into it (entry by entry, so nothing is installed), starts `bin/run` there with a free PORT, a private MEDAI_VAR_DIR
and DICOM port, waits for /healthz/, signs in as dr.adams (password from the clone's
var/demo-accounts.txt), uploads a real PneumoniaMNIST test image as a PNG through the scans
page, and polls the embedded SQLite database until the prediction is stored. Prints the
timestamps (UTC) and the durations: set-up (bin/run until the site answers) and upload to
stored prediction. Stops bin/run (its process group) at the end.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import requests
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S.%f")[:-3]


def _chest_png() -> bytes:
    """A real PneumoniaMNIST test image as PNG (the demo model's own kind of input)."""
    with np.load(ROOT / "data" / "medmnist" / "pneumoniamnist.npz") as data:
        pixels = data["test_images"][0]
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((224, 224)).save(buffer, format="PNG")
    return buffer.getvalue()


def _link_venv(clone: Path) -> None:
    """Give the clone this checkout's virtualenv without installing anything: a .venv folder
    of links to its entries, plus the stamp bin/_venv.sh looks for (the hash of the clone's
    pinned requirements), so bin/run goes straight to the set-up it measures. The shared
    environment itself is never written to."""
    import hashlib

    venv = (ROOT / ".venv").resolve()
    target = clone / ".venv"
    target.mkdir()
    for entry in venv.iterdir():
        if not entry.name.startswith(".medai-requirements-"):
            (target / entry.name).symlink_to(entry)
    pinned = b"".join(
        (clone / name).read_bytes() for name in ("requirements.txt", "requirements-nodeps.txt")
    )
    (target / f".medai-requirements-{hashlib.sha256(pinned).hexdigest()[:16]}").touch()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=str(ROOT))
    parser.add_argument("--branch", default="")
    parser.add_argument("--keep", action="store_true", help="keep the clone and its log")
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args()
    branch = (
        args.branch
        or subprocess.run(
            ["git", "-C", args.repo, "rev-parse", "--abbrev-ref", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    work = Path(tempfile.mkdtemp(prefix="medai-first-start-"))
    clone = work / "clone"
    subprocess.run(["git", "clone", "-q", "--branch", branch, args.repo, str(clone)], check=True)
    commit = subprocess.run(
        ["git", "-C", str(clone), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    _link_venv(clone)
    var = work / "var"
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "MEDAI_", "CELERY_", "DATABASE_", "CACHE_URL"))
    }
    env.update(PORT=str(port), MEDAI_VAR_DIR=str(var), MEDAI_DICOM_PORT=str(_free_port()))
    log = open(work / "bin-run.log", "w")  # noqa: SIM115  (open for the whole run)
    print(f"clone of {branch} at {commit} in {clone}; log {work / 'bin-run.log'}")
    t0 = time.time()
    proc = subprocess.Popen(
        ["bin/run"],
        cwd=clone,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"bin/run exited with {proc.returncode}; see {log.name}")
            if time.time() - t0 > args.timeout:
                raise SystemExit("the site did not come up in time")
            try:
                if requests.get(base + "/healthz/", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        t_up = time.time()
        passwords = dict(
            line.split(": ", 1) for line in (var / "demo-accounts.txt").read_text().splitlines()
        )
        session = requests.Session()
        session.get(base + "/accounts/login/", timeout=30)
        session.post(
            base + "/accounts/login/",
            data={
                "username": "dr.adams",
                "password": passwords["dr.adams"],
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"Referer": base + "/accounts/login/"},
            timeout=30,
        ).raise_for_status()
        patients = session.get(base + "/patients/", timeout=30).text
        patient = re.search(r'href="/patients/(\d+)/"', patients)
        if patient is None:
            raise SystemExit("dr.adams has no patient to upload a scan for")
        url = f"{base}/diagnosis/patients/{patient.group(1)}/scans/"
        session.get(url, timeout=30)
        t_upload = time.time()
        answer = session.post(
            url,
            data={
                "task": "diagnosis.pneumonia",
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            files={"files": ("chest.png", _chest_png(), "image/png")},
            headers={"Referer": url},
            timeout=60,
        )
        if answer.status_code >= 400:
            raise SystemExit(f"upload refused ({answer.status_code}): {answer.text[:300]}")
        t_stored = None
        db = sqlite3.connect(f"file:{var / 'medai.sqlite3'}?mode=ro", uri=True, timeout=30)
        while time.time() - t_upload < args.timeout:
            row = db.execute("SELECT COUNT(*) FROM diagnosis_prediction").fetchone()
            if row and row[0]:
                t_stored = time.time()
                break
            time.sleep(0.1)
        db.close()
        if t_stored is None:
            raise SystemExit("no prediction was stored in time")
        print(f"bin/run started      {_stamp(t0)} UTC")
        print(f"site up (healthz)    {_stamp(t_up)} UTC   set-up {t_up - t0:7.1f} s")
        print(f"scan uploaded        {_stamp(t_upload)} UTC   +{t_upload - t_up:.1f} s (sign-in)")
        print(
            f"prediction stored    {_stamp(t_stored)} UTC   upload -> prediction "
            f"{t_stored - t_upload:5.1f} s; site up -> prediction {t_stored - t_up:5.1f} s"
        )
        print(f"total: bin/run -> first stored prediction {t_stored - t0:.1f} s")
        return 0
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
