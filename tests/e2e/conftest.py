"""The embedded default, started the way the README's run command starts it (Procfile)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from tests.e2e.processes import ROOT, Proc, base_env, free_port, wait_for


@pytest.fixture(scope="session")
def embedded_stack(tmp_path_factory):
    """Web server, both Celery workers, beat and the DICOM receiver on SQLite + the filesystem
    broker."""
    var = tmp_path_factory.mktemp("embedded-var")
    port, dicom_port = free_port(), free_port()
    # The Procfile's DICOM receiver gets a free port too: two test runs on one machine, or a
    # bin/run beside them, must not collide on 11112.
    env = base_env(
        MEDAI_VAR_DIR=str(var),
        DJANGO_SETTINGS_MODULE="medai_site.settings.local",
        MEDAI_DICOM_PORT=str(dicom_port),
        # No held-out validation job for each version the browser tests register (a minute of
        # the ml worker in all, ahead of the jobs the tests wait for): validations are covered
        # by tests/e2e/test_browser_governance.py and tests/platform/test_shipped.py.
        MEDAI_VALIDATE_ON_REGISTER="0",
        # One torch thread in the ml worker: beside the other test process on two cores, a
        # second OpenMP thread only spins (a browser design run took 87 s with two, ~20 s alone).
        MEDAI_TORCH_THREADS="1",
    )
    # collectstatic (compressing the bundles) runs beside migrate and seed_demo: they touch
    # different files, and the machine has two cores.
    collecting = subprocess.Popen(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    for command in (
        ["migrate", "--noinput", "-v0"],
        # No replayed demo monitoring: the browser tests set up the patients they watch. The
        # shipped models go into service; their held-out validations (tests/platform/
        # test_shipped.py) are not rerun here, to keep the browser session's set-up short.
        ["seed_demo", "--no-train", "--no-monitoring"],
    ):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=900,  # minutes only on a machine loaded far beyond CI
        )
    _, errors = collecting.communicate(timeout=900)
    assert collecting.returncode == 0, errors.decode()[-2000:]
    passwords = dict(
        line.split(": ", 1) for line in (var / "demo-accounts.txt").read_text().splitlines()
    )
    honcho = Proc(
        [str(Path(sys.executable).parent / "honcho"), "start", "-f", "Procfile", "-p", str(port)],
        env=env,
        log=var / "honcho.log",
    )
    base_url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return requests.get(base_url + "/healthz/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(healthy, timeout=180, message="the embedded web server")
        # env: what a test's own manage.py command against this stack runs with.
        yield SimpleNamespace(
            base_url=base_url,
            passwords=passwords,
            var=var,
            honcho=honcho,
            dicom_port=dicom_port,
            env=env,
        )
    finally:
        honcho.stop()
        print("--- embedded stack log (tail) ---\n" + honcho.tail(40))
