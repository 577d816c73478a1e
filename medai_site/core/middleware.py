"""Session safety: sign out idle sessions; background polling does not count as activity."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

# Sent by static/js/*.js on background refreshes (job progress, live boards).
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
                request.medai_idle_logout = True
                logout(request)
                request.session["medai_idle_signed_out"] = True
            elif request.headers.get(POLL_HEADER) != "1":
                request.session[SESSION_KEY] = now
        return self.get_response(request)
