"""Refusals the audit trail records on their way to the user."""

from __future__ import annotations

from django.db import models
from django.http import Http404


class ObjectNotVisible(Http404):
    """A 404 for an object outside the user's care teams (or one that does not exist: the
    user is told the same either way). ``AccessDeniedAuditMiddleware`` writes an
    ACCESS_DENIED event for it, naming the object and its patient when they exist.

    ``patient_lookup`` is the ORM path from the object to its patient ("patient" for a
    model with a patient field, "pk" for a Patient, "thread__patient" for a message).
    """

    def __init__(
        self, message: str, *, model: type[models.Model], pk: object, patient_lookup: str = ""
    ) -> None:
        super().__init__(message)
        self.model = model
        self.pk = pk
        self.patient_lookup = patient_lookup
