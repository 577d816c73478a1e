"""File downloads of patient data: an attachment that no shared cache keeps."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse, JsonResponse

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
