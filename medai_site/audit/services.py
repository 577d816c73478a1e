"""Writing audit events (the only write path for the audit trail)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.core.exceptions import FieldError
from django.db import connection, models, transaction
from django.http import HttpRequest
from django.utils import timezone

from medai_site.audit import chain
from medai_site.audit.exceptions import ObjectNotVisible
from medai_site.audit.models import AuditEvent
from medai_site.core.client_address import request_client_ip

if TYPE_CHECKING:
    from medai_site.core.roles import AnyUser
    from medai_site.patients.models import Patient

# Key of the PostgreSQL advisory lock that serialises chain writers ("medaiaud" as bytes).
CHAIN_LOCK_KEY = int.from_bytes(b"medaiaud", "big") >> 1


def client_ip(request: HttpRequest | None) -> str | None:
    """The client address the lockout also uses (DJANGO_PROXY_COUNT trusted hops resolved)."""
    if request is None:
        return None
    return request_client_ip(request)


def _chain_head_lock() -> tuple[int, str]:
    """Lock the chain for this transaction and return (next sequence, previous hash).

    PostgreSQL: a transaction-scoped advisory lock, held until the outer transaction commits
    or rolls back, so the head read after it is the last *committed* row (or this
    transaction's own): two writers never link to the same row, and a rolled-back row
    leaves no gap. An audit event written early in a long transaction therefore delays
    other audit writes until that transaction ends; write audit events last. SQLite takes
    its single write lock at BEGIN (IMMEDIATE transactions, see settings). On any database
    the unique ``sequence`` refuses a fork outright.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])
    head = AuditEvent.objects.order_by("-sequence").values_list("sequence", "row_hash").first()
    return (head[0] + 1, head[1]) if head else (1, chain.GENESIS)


@transaction.atomic
def audit_record(
    *,
    action: str,
    actor: AnyUser | None = None,
    request: HttpRequest | None = None,
    obj: models.Model | None = None,
    patient: Patient | None = None,
    outcome: str = AuditEvent.Outcome.SUCCESS,
    username: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit event, linked into the hash chain; never updates one. Returns it."""
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
        # Hashed as the database will give it back (JSON keys become strings).
        detail=json.loads(json.dumps(detail or {})),
        created_at=timezone.now(),
    )
    if obj is not None:
        event.object_type = obj._meta.label
        event.object_id = str(obj.pk)
        event.object_repr = str(obj)[:200]
    event.sequence, event.prev_hash = _chain_head_lock()
    event.row_hash = chain.row_hash({name: getattr(event, name) for name in chain.HASHED_FIELDS})
    event.save(force_insert=True)
    return event


def audit_access_denied(*, request: HttpRequest, refusal: ObjectNotVisible) -> AuditEvent:
    """Record a refused object (outcome denied), naming it and its patient when they exist."""
    model = refusal.model
    manager = model._default_manager
    obj = patient = None
    try:
        obj = manager.filter(pk=refusal.pk).first()
    except (TypeError, ValueError, OverflowError):
        obj = None  # an id the database cannot hold: nothing to name
    if obj is not None:
        lookup = refusal.patient_lookup or (
            "pk" if model._meta.label == "patients.Patient" else "patient"
        )
        try:
            patient_id = manager.filter(pk=obj.pk).values_list(lookup, flat=True).first()
        except FieldError:
            patient_id = None  # an object that belongs to no patient
        if patient_id is not None:
            patient = apps.get_model("patients", "Patient")._default_manager.get(pk=patient_id)
    match = getattr(request, "resolver_match", None)
    return audit_record(
        action=AuditEvent.Action.ACCESS_DENIED,
        request=request,
        obj=obj,
        patient=patient,
        outcome=AuditEvent.Outcome.DENIED,
        detail={
            "object": model._meta.label,
            "id": str(refusal.pk)[:64],
            "exists": obj is not None,
            "view": match.view_name if match else "",
            "message": str(refusal)[:200],
        },
    )
