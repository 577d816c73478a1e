"""File downloads of patient data: an attachment that no shared cache keeps."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.http import HttpRequest, HttpResponse, JsonResponse

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.patients.models import Patient

FHIR_JSON = "application/fhir+json"


def attachment(response: HttpResponse, filename: str) -> HttpResponse:
    """``response`` as a download named ``filename`` (a plain name), never cached by a shared
    cache (it holds patient data)."""
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


def fhir_download(bundle: dict[str, Any], filename: str) -> HttpResponse:
    """A FHIR JSON Bundle as an uncached attachment."""
    return attachment(JsonResponse(bundle, content_type=FHIR_JSON), filename)


def fhir_export(
    *,
    request: HttpRequest,
    bundle: dict[str, Any],
    filename: str,
    obj: models.Model,
    patient: Patient,
) -> HttpResponse:
    """Record the download of ``bundle`` (about ``obj`` of ``patient``) as an EXPORTED audit
    event, then return it as an uncached FHIR attachment named ``filename``."""
    audit_record(
        action=AuditEvent.Action.EXPORTED,
        request=request,
        obj=obj,
        patient=patient,
        detail={"format": "FHIR R4 Bundle", "resources": len(bundle.get("entry", []))},
    )
    return fhir_download(bundle, filename)
