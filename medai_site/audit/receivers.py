"""Authentication signals -> audit events (Django offers no other hook for these)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@receiver(user_logged_in, dispatch_uid="audit_login")
def _on_login(sender: Any, request: Any, user: User, **kwargs: Any) -> None:
    audit_record(action=AuditEvent.Action.LOGIN, actor=user, request=request)


@receiver(user_logged_out, dispatch_uid="audit_logout")
def _on_logout(sender: Any, request: Any, user: User | None, **kwargs: Any) -> None:
    if user is not None:
        idle = getattr(request, "medai_idle_logout", False)
        action = AuditEvent.Action.SESSION_EXPIRED if idle else AuditEvent.Action.LOGOUT
        audit_record(action=action, actor=user, request=request)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def _on_login_failed(sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
    audit_record(
        action=AuditEvent.Action.LOGIN_FAILED,
        request=request,
        outcome=AuditEvent.Outcome.FAILURE,
        username=str(credentials.get("username", "")),
    )


@receiver(user_locked_out, dispatch_uid="audit_locked_out")
def _on_locked_out(sender: Any, request: Any, username: str, **kwargs: Any) -> None:
    audit_record(
        action=AuditEvent.Action.LOCKED_OUT,
        request=request,
        outcome=AuditEvent.Outcome.DENIED,
        username=username or "",
    )
