"""No set-password token and no patient search term in any log of a real request."""

from __future__ import annotations

import io
import logging
import shlex
import sys

import pytest
import requests
from django.db import connection
from django.test import Client

from medai_site.core.log_redaction import RedactSecretsFilter, url_redact
from medai_site.core.roles import Role
from medai_site.patients.services import portal_account_create
from tests.e2e.processes import ROOT, Proc, base_env, free_port, wait_for
from tests.platform.factories import UserFactory, patient_for

SURNAME = "Quixotefield"


def _procfile_web(port: int) -> list[str]:
    line = next(
        line.split(":", 1)[1]
        for line in (ROOT / "Procfile").read_text().splitlines()
        if line.startswith("web:")
    )
    line = line.replace("${MEDAI_BIND:-127.0.0.1}", "127.0.0.1").replace("${PORT}", str(port))
    return shlex.split(line)


SERVERS = {
    "gunicorn (Procfile)": _procfile_web,
    "runserver": lambda port: [
        sys.executable,
        "manage.py",
        "runserver",
        "--noreload",
        "--nothreading",
        f"127.0.0.1:{port}",
    ],
}


@pytest.mark.parametrize("server", SERVERS)
def test_real_requests_log_neither_activation_tokens_nor_search_terms(
    server, transactional_db, tmp_path
):
    clinician = UserFactory(username="clin_log", roles=[Role.CLINICIAN])
    patient = patient_for(clinician, family_name=SURNAME)
    invitation = portal_account_create(
        patient=patient, username="pat_log", email="", created_by=clinician
    )
    token = invitation.activation_path.rstrip("/").rsplit("/", 1)[1]
    staff = Client()
    staff.force_login(clinician, backend="django.contrib.auth.backends.ModelBackend")
    session = staff.cookies["sessionid"].value

    port = free_port()
    database = connection.settings_dict
    env = base_env(
        DJANGO_SETTINGS_MODULE="medai_site.settings.test",
        DATABASE_URL=f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
        f"{database['PORT'] or 5432}/{database['NAME']}",
        PORT=str(port),
    )
    log = tmp_path / "server.log"
    proc = Proc(SERVERS[server](port), env=env, log=log)
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return requests.get(base + "/healthz/", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, timeout=60, message=server)
        activation = requests.get(
            base + invitation.activation_path, allow_redirects=False, timeout=10
        )
        assert activation.status_code == 302  # the real, valid link
        search = requests.get(
            base + "/patients/",
            params={"q": SURNAME},
            cookies={"sessionid": session},
            timeout=10,
        )
        assert search.status_code == 200 and SURNAME in search.text
        # A 4xx is logged by Django's request logger as well (with the path).
        requests.put(base + invitation.activation_path, data="x", timeout=10)
        wait_for(lambda: "PUT /" in log.read_text(), timeout=10, message="the log line")
    finally:
        proc.stop()
    text = log.read_text()
    assert token not in text and SURNAME not in text, text
    # The lines are there, with what operations need: which page, which parameter, status.
    assert "/portal/activate/[redacted]/[redacted]/" in text and "q=[redacted]" in text


def test_url_redact_keeps_the_page_and_drops_secrets():
    assert url_redact("/patients/?q=Smith&page=2") == "/patients/?q=[redacted]&page=[redacted]"
    assert url_redact("/portal/activate/MTI/c9x-0123abcd/") == (
        "/portal/activate/[redacted]/[redacted]/"
    )
    assert url_redact("https://medai.example/patients/?q=O%27Brien") == (
        "https://medai.example/patients/?q=[redacted]"
    )
    assert url_redact("/jobs/") == "/jobs/"


def test_the_configured_handlers_redact_what_django_logs(settings):
    for name in ("django.request", "django.server"):
        logger = logging.getLogger(name)
        handlers = [h for h in logger.handlers or logging.getLogger().handlers]
        handler = next(
            h for h in handlers if any(isinstance(f, RedactSecretsFilter) for f in h.filters)
        )
        stream = io.StringIO()
        previous = handler.setStream(stream)
        try:
            logger.warning('"%s" %s %s', "GET /patients/?q=Smith HTTP/1.1", 200, 512)
            logger.warning("Not Found: %s", "/portal/activate/MTI/c9x-0123abcd/")
        finally:
            handler.setStream(previous)
        assert "Smith" not in stream.getvalue() and "c9x-0123abcd" not in stream.getvalue()
        assert "q=[redacted]" in stream.getvalue()


def test_dicom_messages_keep_their_opening_words_only():
    from medai_site.core.log_redaction import DicomHeaderRedactFilter, dicom_message_redact

    assert dicom_message_redact("Invalid value for VR UI: 'DOE^JANE'. Please see <...>") == (
        "Invalid value for VR UI [DICOM header details withheld]"
    )
    assert "JANE" not in dicom_message_redact("'DOE^JANE' is not a valid value")
    warning = logging.LogRecord(
        "py.warnings",
        logging.WARNING,
        __file__,
        1,
        "%s",
        ("/x/pydicom/valuerep.py:440: UserWarning: Invalid value for VR PN: 'DOE^JANE'.\n",),
        None,
    )
    DicomHeaderRedactFilter().filter(warning)
    assert warning.getMessage() == (
        "/x/pydicom/valuerep.py:440: UserWarning: Invalid value for VR PN "
        "[DICOM header details withheld]"
    )
    other = logging.LogRecord(
        "py.warnings", logging.WARNING, __file__, 1, "app.py:1: UserWarning: x 'y'", (), None
    )
    DicomHeaderRedactFilter().filter(other)
    assert other.getMessage() == "app.py:1: UserWarning: x 'y'"
