"""Deployment safety: check --deploy, security headers, lockout, idle sign-out, no CDN."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import Client

from medai_site.audit.models import AuditEvent
from medai_site.core.middleware import SESSION_KEY
from tests.platform.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[2]


def production_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "DJANGO_SECRET_KEY"}
        and not k.startswith(("DJANGO_EMAIL_", "MEDAI_DEID_"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "medai_site.settings.production",
            "DJANGO_SECRET_KEY": "x" * 20 + "a-long-random-production-secret-key-0123456789",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
            "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
            "CACHE_URL": "redis://127.0.0.1:6379/1",
            "DJANGO_ALLOWED_HOSTS": "medai.hospital.example",
            "DJANGO_EMAIL_BACKEND": "smtp",
            "DJANGO_EMAIL_HOST": "mail.hospital.example",
            "MEDAI_DEID_UID_KEY": "k" * 16 + "a-stable-deployment-uid-key-0123456789",
        }
    )
    env.update(extra)
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_reports_nothing_under_production_settings():
    result = manage("check", "--deploy", "--fail-level", "DEBUG", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_secrets():
    env = production_env()
    del env["DJANGO_SECRET_KEY"]
    result = manage("check", env=env)
    assert result.returncode != 0 and "DJANGO_SECRET_KEY must be set" in result.stderr
    result = manage("check", env=production_env(DATABASE_URL="sqlite:////tmp/x.sqlite3"))
    assert "DATABASE_URL must point at PostgreSQL" in result.stderr
    result = manage("seed_demo", env=production_env())
    assert result.returncode != 0 and "Refusing" in result.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"DJANGO_EMAIL_BACKEND": None}, "DJANGO_EMAIL_BACKEND must be 'smtp'"),
        (
            {"DJANGO_EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"},
            "DJANGO_EMAIL_BACKEND must be 'smtp'",
        ),
        ({"DJANGO_EMAIL_HOST": None}, "DJANGO_EMAIL_HOST must name the mail relay"),
        ({"DJANGO_EMAIL_BACKEND": "spool"}, "DJANGO_EMAIL_FILE_PATH must name"),
        ({"MEDAI_DEID_UID_KEY": None}, "MEDAI_DEID_UID_KEY must be set in production"),
        ({"MEDAI_DEID_UID_KEY": "short"}, "MEDAI_DEID_UID_KEY must be set in production"),
        ({"CACHE_URL": None}, "CACHE_URL must point at a shared Redis cache"),
    ],
)
def test_production_refuses_unsafe_mail_cache_and_deid_configuration(change, message):
    env = production_env()
    for name, value in change.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    result = manage("check", env=env)
    assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]


def test_production_accepts_a_private_mail_spool(tmp_path):
    env = production_env(DJANGO_EMAIL_BACKEND="spool", DJANGO_EMAIL_FILE_PATH=str(tmp_path))
    result = manage("check", env=env)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.django_db
def test_security_headers_on_every_page(users, client_for):
    response = client_for(users.clinician_a).get("/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    # No CDN and no inline script anywhere in the page.
    html = response.content.decode()
    assert "<script>" not in html and "cdn." not in html


@pytest.mark.django_db
def test_plotly_is_served_from_the_installed_package(settings):
    import plotly
    from django.contrib.staticfiles import finders

    path = finders.find("vendor/plotly/plotly.min.js")
    assert path and Path(path).parent == Path(plotly.__file__).parent / "package_data"
    # Only that bundle of the package is collected (not its widget bundle or data sets).
    listed = [
        f"{getattr(storage, 'prefix', '')}/{name}"
        for finder in finders.get_finders()
        for name, storage in finder.list([])
        if str(getattr(storage, "location", "")).startswith(str(Path(plotly.__file__).parent))
    ]
    assert listed == ["vendor/plotly/plotly.min.js"]
    assert finders.find("vendor/plotly/widgetbundle.js") is None


@pytest.mark.django_db
def test_failed_login_lockout(users, settings):
    client = Client(REMOTE_ADDR="10.9.9.9")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "clin_a", "password": "nope"})
    response = client.post("/accounts/login/", {"username": "clin_a", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert AuditEvent.objects.filter(action="locked_out", actor_username="clin_a").exists()
    assert not AuditEvent.objects.filter(action="login").exists()


@pytest.mark.django_db
def test_idle_session_is_signed_out_but_polling_does_not_keep_it_alive(users, client_for, settings):
    client = client_for(users.clinician_a)
    assert client.get("/").status_code == 200
    session = client.session
    last = session[SESSION_KEY]
    # Background polls do not refresh activity.
    client.get("/jobs/", HTTP_X_MEDAI_POLL="1")
    assert client.session[SESSION_KEY] == last
    session[SESSION_KEY] = time.time() - settings.MEDAI_IDLE_TIMEOUT.total_seconds() - 5
    session.save()
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    login_page = client.get(response["Location"]).content.decode()
    assert "signed out after a period of inactivity" in login_page
    assert AuditEvent.objects.filter(action="session_expired", actor=users.clinician_a).exists()


@pytest.mark.django_db
def test_healthz_is_public_and_reveals_nothing(client):
    response = client.get("/healthz/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.mark.django_db
def test_lockout_behind_a_proxy_is_keyed_on_the_client_not_the_balancer(users, settings):
    settings.MEDAI_PROXY_COUNT = 1
    attacker = Client(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.66")
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        attacker.post("/accounts/login/", {"username": "clin_a", "password": "nope"})
    # The attacker is locked out; the clinician, through the same balancer, is not.
    response = attacker.post("/accounts/login/", {"username": "clin_a", "password": PASSWORD})
    assert response.status_code == 429
    clinician = Client(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.20")
    response = clinician.post("/accounts/login/", {"username": "clin_a", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    failures = AuditEvent.objects.filter(action="login_failed", actor_username="clin_a")
    assert set(failures.values_list("ip_address", flat=True)) == {"203.0.113.66"}
    login = AuditEvent.objects.get(action="login", actor_username="clin_a")
    assert login.ip_address == "198.51.100.20"


@pytest.mark.django_db
def test_a_forged_forwarded_for_neither_dodges_nor_redirects_the_lockout(users, settings):
    settings.MEDAI_PROXY_COUNT = 1
    for n in range(settings.AXES_FAILURE_LIMIT):
        # A new forged entry each time; the balancer appends the attacker's real address.
        attacker = Client(
            REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=f"198.51.100.20, 203.0.113.{n}, 6.6.6.6"
        )
        attacker.post("/accounts/login/", {"username": "clin_a", "password": "nope"})
    response = attacker.post("/accounts/login/", {"username": "clin_a", "password": PASSWORD})
    assert response.status_code == 429
    # The victim's address, named in every forged header, is not locked.
    victim = Client(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.20")
    response = victim.post("/accounts/login/", {"username": "clin_a", "password": PASSWORD})
    assert response.status_code == 302


@pytest.mark.django_db
def test_without_proxies_a_forwarded_for_header_is_ignored(users, settings):
    settings.MEDAI_PROXY_COUNT = 0
    client = Client(REMOTE_ADDR="192.0.2.44", HTTP_X_FORWARDED_FOR="1.2.3.4")
    client.post("/accounts/login/", {"username": "clin_a", "password": "nope"})
    event = AuditEvent.objects.get(action="login_failed")
    assert event.ip_address == "192.0.2.44"


@pytest.mark.django_db
def test_force_login_in_tests_passes_the_second_factor_with_a_real_device(users, client_for):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    assert client_for(users.model_admin).get("/admin/").status_code == 200
    assert TOTPDevice.objects.filter(user=users.model_admin, confirmed=True).count() == 1


def test_the_private_mail_spool_is_readable_by_the_service_account_only(tmp_path, settings):
    from django.core import mail

    settings.EMAIL_BACKEND = "medai_site.core.mail_spool.PrivateSpoolEmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    mail.send_mail("Your MedAI patient portal", "link /portal/activate/x/y/", None, ["p@x.org"])
    files = list((tmp_path / "mail").iterdir())
    assert len(files) == 1 and "/portal/activate/x/y/" in files[0].read_text()
    assert (tmp_path / "mail").stat().st_mode & 0o777 == 0o700
    assert files[0].stat().st_mode & 0o777 == 0o600
