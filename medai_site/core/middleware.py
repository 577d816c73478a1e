"""Session safety: sign out idle sessions; background polling does not count as activity."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

# Sent by static/js/*.js on background refreshes (job progress, live boards).
logger = logging.getLogger(__name__)

POLL_HEADER = "X-MedAI-Poll"
SESSION_KEY = "medai_last_activity"


class IdleTimeoutMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = time.time()
            last = request.session.get(SESSION_KEY)
            if last is not None and now - last > settings.MEDAI_IDLE_TIMEOUT.total_seconds():
                request.medai_idle_logout = True  # type: ignore[attr-defined]  # read by the response phase
                logout(request)
                request.session["medai_idle_signed_out"] = True
            elif request.headers.get(POLL_HEADER) != "1":
                request.session[SESSION_KEY] = now
        return self.get_response(request)


class PortalBoundaryMiddleware:
    """Keeps portal (patient-role) users inside the portal.

    Every staff page scopes its data by care team, so a patient would see nothing there
    anyway; this refuses those pages outright (defence in depth), whatever a future view
    forgets. The site root sends a patient to the portal's home.
    """

    ALLOWED_PREFIXES = ("/portal/", "/accounts/", "/healthz/", "/static/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from medai_site.core.roles import Role, has_role

        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and has_role(user, Role.PATIENT):
            path = request.path
            if path == "/":
                return redirect("portal:home")
            if not path.startswith(self.ALLOWED_PREFIXES):
                raise PermissionDenied("The patient portal gives access to your own record only.")
        return self.get_response(request)


class StorageFullMiddleware:
    """Answers a full disk or quota (OSError ENOSPC/EDQUOT from any write) with a 507 and a
    message instead of a 500.

    The services that write files clean up their own partial files and roll back their rows
    (``medai_site.core.media.media_writes`` around ``transaction.atomic``) before the error
    reaches this point, so the answer can honestly say nothing was saved.
    """

    MESSAGE = (
        "The server's storage is full, so nothing from this request was saved. "
        "Please try again later; the MedAI administrators have been alerted."
    )

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from django.http import JsonResponse
        from django.template.response import TemplateResponse

        from medai_site.core.media import is_storage_full

        if not is_storage_full(exception):
            return None
        # Logged as an error: an operator must free space; the user cannot fix this.
        logger.error(
            "storage full while serving %s %s", request.method, request.path, exc_info=exception
        )
        accept = request.headers.get("Accept", "")
        if request.path.startswith("/api/") or (
            "application/json" in accept and "text/html" not in accept
        ):
            return JsonResponse({"detail": self.MESSAGE}, status=507)
        response = TemplateResponse(request, "507.html", {"message": self.MESSAGE}, status=507)
        return response.render()


class ClientAddressMiddleware:
    """Resolves the client address once (from DJANGO_PROXY_COUNT trusted hops) into
    request.client_ip, for the lockout and every audit event of the request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from medai_site.core.client_address import request_client_ip

        request_client_ip(request)
        return self.get_response(request)


class TwoFactorMiddleware:
    """A user who must pass a second factor reaches only enrolment, verification and
    sign-out (the Django admin included) until this session has passed it."""

    OPEN_PREFIXES = ("/static/", "/healthz/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.urls import reverse
        from django.utils.http import urlencode

        from medai_site.core.two_factor import (
            totp_device_confirmed,
            two_factor_required,
            two_factor_verified,
        )

        user = getattr(request, "user", None)
        if (
            user is not None
            and two_factor_required(user=user)
            and not two_factor_verified(request=request)
        ):
            open_paths = {
                reverse("two_factor_verify"),
                reverse("two_factor_enrol"),
                reverse("logout"),
            }
            if request.path not in open_paths and not request.path.startswith(self.OPEN_PREFIXES):
                step = (
                    "two_factor_verify" if totp_device_confirmed(user=user) else "two_factor_enrol"
                )
                return redirect(f"{reverse(step)}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)
