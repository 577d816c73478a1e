"""Writing audit events (the only write path for the audit trail)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models
from django.http import HttpRequest
from django.utils import timezone

from medai_site.audit.models import AuditEvent
from medai_site.core.client_address import request_client_ip


def client_ip(request: HttpRequest | None) -> str | None:
    """The client address the lockout also uses (DJANGO_PROXY_COUNT trusted hops resolved)."""
    if request is None:
        return None
    return request_client_ip(request)


def audit_record(
    *,
    action: str,
    actor: AbstractBaseUser | AnonymousUser | None = None,
    request: HttpRequest | None = None,
    obj: models.Model | None = None,
    patient: models.Model | None = None,
    outcome: str = AuditEvent.Outcome.SUCCESS,
    username: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit event; never updates an existing one. Returns the new event."""
    if actor is None and request is not None:
        actor = getattr(request, "user", None)
    user = actor if actor is not None and actor.is_authenticated else None
    event = AuditEvent(
        actor=user,
        actor_username=(user.get_username() if user else username)[:150],
        action=action,
        outcome=outcome,
        patient=patient,
        ip_address=client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "") if request else "")[:300],
        path=(request.get_full_path() if request else "")[:300],
        detail=detail or {},
        created_at=timezone.now(),
    )
    if obj is not None:
        event.object_type = obj._meta.label
        event.object_id = str(obj.pk)
        event.object_repr = str(obj)[:200]
    event.save(force_insert=True)
    return event
