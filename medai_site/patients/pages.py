"""Patient pages: the one way a view reaches a patient of the signed-in user's care teams
and records that it showed the patient's data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.db import models
from django.http import HttpRequest, HttpResponse

from medai_site.audit.exceptions import ObjectNotVisible
from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.patients.models import Patient
from medai_site.patients.selectors import patient_get

NOT_IN_CARE_TEAMS = "No such patient in your care teams."


@dataclass(frozen=True)
class PatientPage:
    """A patient of the user's care teams, as a view shows it; ``name`` names the page in the
    audit trail ("" for the patient's own page)."""

    request: HttpRequest
    patient: Patient
    name: str = ""

    def viewed(self, *, obj: models.Model | None = None) -> AuditEvent:
        """Record that the page showed the patient (PATIENT_VIEWED) or one of the patient's
        records ``obj`` (RECORD_VIEWED); returns the event."""
        return audit_record(
            action=AuditEvent.Action.PATIENT_VIEWED
            if obj is None
            else AuditEvent.Action.RECORD_VIEWED,
            request=self.request,
            obj=self.patient if obj is None else obj,
            patient=self.patient,
            detail={"page": self.name} if self.name else None,
        )


def patient_page_get(*, request: HttpRequest, pk: int, name: str = "") -> PatientPage:
    """The patient ``pk`` when in the user's care teams; else ObjectNotVisible, a 404 that says
    the same for a patient of another team and one that does not exist (and is audited)."""
    try:
        patient = patient_get(user=request.user, pk=pk)
    except Patient.DoesNotExist:
        raise ObjectNotVisible(NOT_IN_CARE_TEAMS, model=Patient, pk=pk) from None
    return PatientPage(request=request, patient=patient, name=name)


def patient_page(name: str = "", *, kwarg: str = "patient_pk") -> Callable:
    """View decorator: the URL's ``kwarg`` becomes ``page``, a PatientPage (named ``name`` in
    the audit trail) of the user's care teams, 404 otherwise; the view calls ``page.viewed()``
    where it shows the patient's data. Put it below ``role_required`` (other roles get 403)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            pk = kwargs.pop(kwarg)
            found = patient_page_get(request=request, pk=pk, name=name)
            return view(request, *args, page=found, **kwargs)

        return wrapped

    return decorate
