"""Staff two-factor sign-in: enrolment, verification, recovery codes, rate limit, audit."""

from __future__ import annotations

import re
from base64 import b32encode

import pytest
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from medai_site.audit.models import AuditEvent
from medai_site.core.two_factor import recovery_codes_regenerate
from tests.platform.factories import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.real_second_factor]


def code_for(device: TOTPDevice) -> str:
    device.refresh_from_db()
    return (
        f"{TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift).token():06d}"
    )


def wrong_code_for(device: TOTPDevice) -> str:
    return f"{(int(code_for(device)) + 1) % 1_000_000:06d}"


def password_sign_in(username: str) -> Client:
    client = Client()
    response = client.post("/accounts/login/", {"username": username, "password": PASSWORD})
    assert response.status_code == 302, "password sign-in failed"
    return client


def enrolled(user) -> tuple[TOTPDevice, list[str]]:
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return device, recovery_codes_regenerate(user=user)


def actions(user) -> list[str]:
    return list(
        AuditEvent.objects.filter(actor=user, action__startswith="2fa_")
        .order_by("pk")
        .values_list("action", flat=True)
    )


def test_first_sign_in_enrols_with_a_confirmed_code_before_anything_else(users):
    client = password_sign_in("madmin")
    for page in ("/", "/admin/", "/admin/registry/modelversion/", "/diagnosis/training/"):
        response = client.get(page)
        assert response.status_code == 302, page
        assert response["Location"].startswith("/accounts/2fa/enrol/?next="), page
    page = client.get("/accounts/2fa/enrol/?next=/admin/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and "<script" not in html.split("<main", 1)[1].split("</main>")[0]
    device = TOTPDevice.objects.get(user=users.model_admin)
    assert not device.confirmed
    secret = b32encode(device.bin_key).decode().rstrip("=")
    shown = re.search(r'id="totp-secret">([^<]+)<', html).group(1).replace(" ", "")
    assert shown == secret
    # A wrong code does not count: the device stays pending and the admin stays closed.
    response = client.post("/accounts/2fa/enrol/", {"code": wrong_code_for(device)})
    assert response.status_code == 400 and "did not match" in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed and client.get("/admin/").status_code == 302
    # Reloading the page keeps the same pending key (the app may already hold it).
    assert secret.encode() and TOTPDevice.objects.filter(user=users.model_admin).count() == 1
    client.get("/accounts/2fa/enrol/")
    assert TOTPDevice.objects.filter(user=users.model_admin).count() == 1
    device.throttle_reset()
    response = client.post("/accounts/2fa/enrol/", {"code": code_for(device), "next": "/admin/"})
    assert response.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", response.content.decode())
    assert len(codes) == 10 and len(set(codes)) == 10
    assert sorted(codes) == sorted(
        StaticToken.objects.filter(device__user=users.model_admin).values_list("token", flat=True)
    )
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/admin/").status_code == 200
    assert actions(users.model_admin) == [
        "2fa_failed",
        "2fa_codes_regenerated",
        "2fa_enrolled",
    ]


def test_sign_in_asks_for_the_code_and_the_password_alone_cannot_replace_it(users, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # this test is not about the rate limit
    device, _ = enrolled(users.model_admin)
    client = password_sign_in("madmin")
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/?next=%2Fadmin%2F"
    # Enrolling a new authenticator with the password alone is refused.
    response = client.get("/accounts/2fa/enrol/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/2fa/?")
    assert TOTPDevice.objects.filter(user=users.model_admin).count() == 1
    assert client.get("/accounts/2fa/recovery-codes/").status_code == 302
    response = client.post("/accounts/2fa/", {"code": wrong_code_for(device), "next": "/admin/"})
    assert response.status_code == 400 and "did not match" in response.content.decode()
    response = client.post("/accounts/2fa/", {"code": "", "next": "/admin/"})
    assert response.status_code == 400
    response = client.post("/accounts/2fa/", {"code": code_for(device), "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    # The same code cannot be replayed in another session.
    other = password_sign_in("madmin")
    response = other.post("/accounts/2fa/", {"code": code_for(device)})
    assert response.status_code == 400
    # An open redirect is not followed.
    third = password_sign_in("madmin")
    device.last_t = -1
    device.save()
    response = third.post(
        "/accounts/2fa/", {"code": code_for(device), "next": "https://evil.example/"}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    assert actions(users.model_admin) == [
        "2fa_codes_regenerated",
        "2fa_failed",
        "2fa_verified",
        "2fa_failed",  # the replayed code
        "2fa_verified",
    ]
    failure = AuditEvent.objects.filter(action="2fa_failed").first()
    assert failure.outcome == "failure" and failure.ip_address == "127.0.0.1"


def test_wrong_codes_are_rate_limited(users, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    settings.OTP_STATIC_THROTTLE_FACTOR = 60
    device, codes = enrolled(users.model_admin)
    client = password_sign_in("madmin")
    assert client.post("/accounts/2fa/", {"code": wrong_code_for(device)}).status_code == 400
    # Even the right code, or a recovery code, waits out the delay.
    for code in (code_for(device), codes[0]):
        response = client.post("/accounts/2fa/", {"code": code})
        assert response.status_code == 429
        assert "Too many wrong codes. Wait" in response.content.decode()
    assert client.get("/").status_code == 302
    assert StaticToken.objects.filter(token=codes[0]).exists()  # not spent while refused
    denied = AuditEvent.objects.filter(action="2fa_failed", outcome="denied").count()
    assert denied == 2


def test_wrong_recovery_codes_count_against_the_same_limit(users, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    device, codes = enrolled(users.model_admin)
    client = password_sign_in("madmin")
    response = client.post("/accounts/2fa/", {"code": "aaaaaaaa"})
    assert response.status_code == 400 and "recovery code is not valid" in response.content.decode()
    assert client.post("/accounts/2fa/", {"code": code_for(device)}).status_code == 429


def test_a_recovery_code_signs_in_once(users):
    _, codes = enrolled(users.model_admin)
    client = password_sign_in("madmin")
    response = client.post("/accounts/2fa/", {"code": codes[3].upper()}, follow=True)
    assert response.status_code == 200
    assert "recovery code (9 left)" in response.content.decode()
    assert client.get("/admin/").status_code == 200
    event = AuditEvent.objects.get(action="2fa_recovery_used")
    assert event.actor == users.model_admin and event.detail == {"recovery_codes_left": 9}
    again = password_sign_in("madmin")
    response = again.post("/accounts/2fa/", {"code": codes[3]})
    assert response.status_code == 400 and "each works only once" in response.content.decode()


def test_new_recovery_codes_replace_the_old_ones(users, settings):
    settings.OTP_STATIC_THROTTLE_FACTOR = 0
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    device, old = enrolled(users.model_admin)
    client = password_sign_in("madmin")
    client.post("/accounts/2fa/", {"code": code_for(device)})
    page = client.get("/accounts/2fa/recovery-codes/")
    assert page.status_code == 200 and "<li><code>" not in page.content.decode()
    response = client.post("/accounts/2fa/recovery-codes/")
    new = re.findall(r"<li><code>([a-z2-7]+)</code></li>", response.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    other = password_sign_in("madmin")
    assert other.post("/accounts/2fa/", {"code": old[0]}).status_code == 400
    assert other.post("/accounts/2fa/", {"code": new[0]}).status_code == 302
    assert (
        AuditEvent.objects.filter(action="2fa_codes_regenerated", actor=users.model_admin).count()
        == 2
    )


def test_clinicians_need_a_second_factor_only_when_the_setting_says_so(users, settings):
    client = password_sign_in("clin_a")
    assert client.get("/").status_code == 200
    assert client.get("/accounts/2fa/").status_code == 403
    settings.MEDAI_2FA_CLINICIANS = True
    response = client.get("/patients/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/2fa/enrol/")
    # Researchers are not clinicians: unaffected.
    assert password_sign_in("research").get("/").status_code == 200


def test_superusers_need_a_second_factor(db):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("it", "it@example.org", PASSWORD)
    client = password_sign_in("it")
    response = client.get("/admin/audit/auditevent/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/2fa/")
    # Sign-out stays open.
    assert client.post("/accounts/logout/").status_code == 302


def test_the_second_step_shows_no_navigation_until_it_is_passed(users, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    device, _ = enrolled(users.model_admin)
    client = password_sign_in("madmin")
    html = client.get("/accounts/2fa/?next=/admin/").content.decode()
    nav = re.search(r'<nav class="mainnav"[^>]*>(.*?)</nav>', html, re.S)
    assert nav is not None and "<a " not in nav.group(1)
    assert "Sign out" in html  # leaving is still possible
    client.post("/accounts/2fa/", {"code": code_for(device), "next": "/"})
    html = client.get("/").content.decode()
    nav = re.search(r'<nav class="mainnav"[^>]*>(.*?)</nav>', html, re.S)
    assert nav is not None and 'href="/admin/"' in nav.group(1)
