"""Append-only audit trail: who viewed, changed or exported what, when, and from where."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models


class AuditImmutableError(RuntimeError):
    """Raised by any attempt to change or delete an audit event."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AuditImmutableError("Audit events are append-only; they cannot be updated.")

    def delete(self) -> NoReturn:
        raise AuditImmutableError("Audit events are append-only; they cannot be deleted.")


class AuditEvent(models.Model):
    class Action(models.TextChoices):
        LOGIN = "login", "Signed in"
        LOGOUT = "logout", "Signed out"
        LOGIN_FAILED = "login_failed", "Failed sign-in"
        LOCKED_OUT = "locked_out", "Locked out"
        SESSION_EXPIRED = "session_expired", "Signed out after inactivity"
        PATIENT_VIEWED = "patient_viewed", "Viewed patient"
        PATIENT_LIST_VIEWED = "patient_list_viewed", "Viewed patient list"
        PATIENT_CREATED = "patient_created", "Created patient"
        PATIENTS_IMPORTED = "patients_imported", "Imported patients"
        EXPORTED = "exported", "Exported data"
        JOB_STARTED = "job_started", "Started job"
        JOB_CANCELLED = "job_cancelled", "Cancelled job"
        MODEL_ACTIVATED = "model_activated", "Activated model version"
        MODEL_ROLLED_BACK = "model_rolled_back", "Rolled back model version"
        MODEL_APPROVED = "model_approved", "Approved model version"
        MODEL_VALIDATION_REQUESTED = "model_validation", "Requested model validation"
        ACCESS_DENIED = "access_denied", "Access denied"
        RECORD_VIEWED = "record_viewed", "Viewed record"
        RECORD_CHANGED = "record_changed", "Changed record"
        TWO_FACTOR_ENROLLED = "2fa_enrolled", "Set up two-factor sign-in"
        TWO_FACTOR_VERIFIED = "2fa_verified", "Passed two-factor sign-in"
        TWO_FACTOR_FAILED = "2fa_failed", "Failed two-factor code"
        TWO_FACTOR_RECOVERY_USED = "2fa_recovery_used", "Signed in with a recovery code"
        TWO_FACTOR_CODES_REGENERATED = "2fa_codes_regenerated", "Made new recovery codes"

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        FAILURE = "failure", "Failure"
        DENIED = "denied", "Denied"

    # PROTECT, not SET_NULL: deleting a user must never rewrite the trail.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=40, choices=Action.choices)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.SUCCESS)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    patient = models.ForeignKey(
        "patients.Patient", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    path = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_index=True)
    # The hash chain (see medai_site/audit/chain.py): position in the trail, the hash of the
    # row before it and this row's own hash over its fields and that previous hash, so an
    # altered, deleted or inserted row breaks the chain that `manage.py audit_verify` walks.
    sequence = models.BigIntegerField(unique=True)
    prev_hash = models.CharField(max_length=64)
    row_hash = models.CharField(max_length=64)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["patient", "-created_at"]),
            models.Index(fields=["actor", "-created_at"]),
            models.Index(fields=["action", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_username or '-'} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AuditImmutableError("Audit events are append-only; they cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AuditImmutableError("Audit events are append-only; they cannot be deleted.")
