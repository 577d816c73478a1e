"""Denied object access -> an audit event, whichever view refused it."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from medai_site.audit.exceptions import ObjectNotVisible


class AccessDeniedAuditMiddleware:
    """Records ACCESS_DENIED (outcome denied) for every ObjectNotVisible a view raises; the
    404 itself is left to Django. One place, so a new scoped view cannot forget it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        if isinstance(exception, ObjectNotVisible):
            from medai_site.audit.services import audit_access_denied

            audit_access_denied(request=request, refusal=exception)
        return None
