"""Staff two-factor sign-in (TOTP with django-otp) and single-use recovery codes.

Model admins, staff and superusers (and clinicians when MEDAI_2FA_CLINICIANS is set) must
pass a second factor after their password before any page but enrolment, verification and
sign-out (core.middleware.TwoFactorMiddleware). Every enrolment, verification, failure and
recovery-code use is audited.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import segno
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.core.roles import Role, has_role

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from medai_site.core.roles import AnyUser, AuthenticatedHttpRequest

RECOVERY_CODE_COUNT = 10
TOTP_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"


class SecondFactorRejected(ValueError):
    """A code that did not verify; the message says why."""


class SecondFactorThrottled(SecondFactorRejected):
    """An attempt refused by the rate limit on wrong codes; the message says how long."""


def two_factor_required(*, user: AnyUser) -> bool:
    """True when this user must pass a second factor (superusers, staff, model admins; and
    clinicians when settings.MEDAI_2FA_CLINICIANS)."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser:
        return True
    if has_role(user, Role.PATIENT):
        return False
    if user.is_staff or has_role(user, Role.MODEL_ADMIN):
        return True
    return bool(settings.MEDAI_2FA_CLINICIANS) and has_role(user, Role.CLINICIAN)


def two_factor_verified(*, request: HttpRequest) -> bool:
    """True when this session has passed a second factor (django-otp's OTPMiddleware)."""
    is_verified = getattr(request.user, "is_verified", None)
    return bool(is_verified and is_verified())


def totp_device_confirmed(*, user: AnyUser) -> TOTPDevice | None:
    """The user's enrolled (confirmed) authenticator, if any."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-pk").first()


def totp_secret_text(*, device: TOTPDevice) -> str:
    """The device's secret in base32, in groups of four, for typing into an app."""
    secret = _b32(device)
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def totp_qr_svg(*, device: TOTPDevice) -> str:
    """The otpauth:// URL as an inline SVG QR code drawn on the server (no script, no CDN)."""
    return segno.make(device.config_url, error="m").svg_inline(scale=5, border=2)


@transaction.atomic
def totp_device_start(*, user: User) -> TOTPDevice:
    """An unconfirmed authenticator for enrolment: the pending one if there is one, else a
    new random key. It counts only after totp_device_confirm."""
    pending = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if pending is not None:
        return pending
    return TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)


def _throttle_message(device: Any) -> str | None:
    allowed, data = device.verify_is_allowed()
    if allowed:
        return None
    wait = max(1, int((data["locked_until"] - timezone.now()).total_seconds() + 0.999))
    return f"Too many wrong codes. Wait {wait} seconds before the next try."


@transaction.atomic
def recovery_codes_regenerate(*, user: User, request: HttpRequest | None = None) -> list[str]:
    """Replace the user's recovery codes with 10 new single-use ones (audited); returns them
    (they are shown once and stored only as django-otp static tokens)."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    codes: list[str] = []
    while len(codes) < RECOVERY_CODE_COUNT:
        code = StaticToken.random_token()
        if code not in codes:
            codes.append(code)
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    audit_record(
        action=AuditEvent.Action.TWO_FACTOR_CODES_REGENERATED,
        actor=user,
        request=request,
        detail={"recovery_codes": RECOVERY_CODE_COUNT},
    )
    return codes


def totp_device_confirm(
    *, request: AuthenticatedHttpRequest, device: TOTPDevice, token: str
) -> list[str]:
    """Confirm a pending authenticator with a code from it: it replaces any earlier one, the
    session counts as verified, and 10 new recovery codes are returned (audited).
    SecondFactorRejected on a wrong code or while rate-limited."""
    user = request.user
    token = "".join(token.split())
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=user)
        if device.confirmed:
            raise SecondFactorRejected("This authenticator is already set up.")
        waiting = _throttle_message(device)
        if waiting is None and device.verify_token(token):
            TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            codes = recovery_codes_regenerate(user=user, request=request)
            audit_record(
                action=AuditEvent.Action.TWO_FACTOR_ENROLLED,
                actor=user,
                request=request,
                detail={"device": TOTP_NAME},
            )
            _session_verified(request=request, device=device)
            return codes
    # Outside the transaction: the failure (and the throttle it set) must stay recorded.
    audit_record(
        action=AuditEvent.Action.TWO_FACTOR_FAILED,
        actor=user,
        request=request,
        outcome=AuditEvent.Outcome.DENIED if waiting else AuditEvent.Outcome.FAILURE,
        detail={"step": "enrolment"},
    )
    if waiting:
        raise SecondFactorThrottled(waiting)
    raise SecondFactorRejected(
        "That code did not match. Check the time on your phone and try again."
    )


def _session_verified(*, request: HttpRequest, device: Any) -> None:
    # A new session key once the second factor is passed, so a key seen before it is useless.
    request.session.cycle_key()
    otp_login(request, device)


@dataclass(frozen=True)
class Verification:
    recovery_code_used: bool
    recovery_codes_left: int


def second_factor_verify(*, request: HttpRequest, token: str) -> Verification:
    """Verify the signed-in user's authenticator code (6 digits) or one of their recovery
    codes (single use); marks the session verified (audited either way). Wrong codes are
    rate-limited per user (doubling waits). SecondFactorRejected says why it failed."""
    user = request.user
    token = "".join(token.split()).lower()
    if not token:
        raise SecondFactorRejected("Enter the 6-digit code from your authenticator app.")
    recovery = not (len(token) == 6 and token.isdigit())
    waiting: str | None = None
    verified = None
    with transaction.atomic():
        # Both devices are locked, so two simultaneous tries cannot both use one code, and
        # either kind of wrong code counts against the one per-user limit.
        totp = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
        static = StaticDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
        if totp is None:
            raise SecondFactorRejected("Set up your authenticator app first.")
        for device in (totp, static):
            if device is not None:
                waiting = waiting or _throttle_message(device)
        if waiting is None:
            device = static if recovery else totp
            if device is not None and device.verify_token(token):
                verified = device
                for other in (totp, static):
                    if other is not None and other is not device:
                        other.throttle_reset()
            elif device is not totp:
                # A wrong recovery code counts against the authenticator's limit too.
                totp.throttle_increment()
        if verified is not None:
            left = static.token_set.count() if static is not None else 0
            audit_record(
                action=(
                    AuditEvent.Action.TWO_FACTOR_RECOVERY_USED
                    if recovery
                    else AuditEvent.Action.TWO_FACTOR_VERIFIED
                ),
                actor=user,
                request=request,
                detail={"recovery_codes_left": left} if recovery else {},
            )
            _session_verified(request=request, device=verified)
            return Verification(recovery_code_used=recovery, recovery_codes_left=left)
    audit_record(
        action=AuditEvent.Action.TWO_FACTOR_FAILED,
        actor=user,
        request=request,
        outcome=AuditEvent.Outcome.DENIED if waiting else AuditEvent.Outcome.FAILURE,
        detail={"step": "recovery code" if recovery else "authenticator code"},
    )
    if waiting:
        raise SecondFactorThrottled(waiting)
    if recovery:
        raise SecondFactorRejected("That recovery code is not valid (each works only once).")
    raise SecondFactorRejected("That code did not match. Enter the current 6-digit code.")


def demo_totp_key_name(username: str) -> str:
    """The line of var/demo-accounts.txt that holds a demo user's authenticator key."""
    return f"{username}.totp"


@transaction.atomic
def demo_two_factor_ensure(*, user: User, password_file: Path) -> str:
    """The demo user's enrolled authenticator, its base32 key kept in ``password_file`` (mode
    600) beside the demo passwords; kept while the stored key matches the enrolled one, else
    a new confirmed one. Returns the key. Never used by production settings."""
    lines = password_file.read_text().splitlines() if password_file.exists() else []
    stored = dict(line.split(": ", 1) for line in lines if ": " in line)
    name = demo_totp_key_name(user.get_username())
    device = totp_device_confirmed(user=user)
    if device is not None and stored.get(name) == _b32(device):
        return stored[name]
    TOTPDevice.objects.filter(user=user).delete()
    device = TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=True)
    if not StaticDevice.objects.filter(user=user).exists():
        recovery_codes_regenerate(user=user)
    stored[name] = _b32(device)
    password_file.write_text("".join(f"{key}: {value}\n" for key, value in stored.items()))
    password_file.chmod(0o600)
    return stored[name]


def _b32(device: TOTPDevice) -> str:
    return base64.b32encode(device.bin_key).decode().rstrip("=")
