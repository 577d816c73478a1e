"""The DICOMweb STOW-RS endpoint (PS3.18 §10.5): a PACS or modality stores studies with its
sender token; each study goes through the same intake as a browser upload."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from diagnosis.models import DicomWebSender
from diagnosis.pacs.dicomweb import (
    MultipartInvalid,
    MultipartTooLarge,
    multipart_split,
    store_response,
    stow_content_type,
    valid_uid,
)
from diagnosis.pacs.services import dicomweb_sender_authenticate, stow_store
from diagnosis.services import MAX_FILES_PER_UPLOAD
from medai_site.core.uploads import upload_size_problem


class SenderPrincipal:
    """The authenticated caller of the STOW-RS endpoint: a sending system, never a person."""

    is_authenticated = True
    is_active = True
    is_staff = False

    def __init__(self, sender: DicomWebSender) -> None:
        self.sender = sender

    def get_username(self) -> str:
        return f"dicomweb:{self.sender.name}"


class SenderTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer mdw_<prefix>_<secret>``."""

    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[SenderPrincipal, DicomWebSender] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "The Authorization header must be 'Bearer <sender token>'."
            )
        sender = dicomweb_sender_authenticate(header[1].decode(errors="replace"))
        if sender is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked DICOMweb sender token.")
        return SenderPrincipal(sender), sender

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="medai-dicomweb"'


class SenderThrottle(SimpleRateThrottle):
    """Requests per sender (MEDAI_DICOMWEB_RATE_LIMIT), counted in the shared cache like the
    device API's."""

    scope = "dicomweb"

    def get_rate(self) -> str | None:
        return settings.MEDAI_DICOMWEB_RATE_LIMIT or None

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        sender = getattr(request, "auth", None)
        if isinstance(sender, DicomWebSender):
            return f"throttle_dicomweb_{sender.token_prefix}"
        return None


class _FirstRenderer(BaseContentNegotiation):
    # STOW-RS clients ask for application/dicom+json; the store response is written as such
    # below, and errors are plain JSON whatever the Accept header says (never a 406).
    def select_parser(self, request: Request, parsers: Any) -> None:
        return None

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], str(renderers[0].media_type)


def _refusal(status: int, message: str) -> HttpResponse:
    return HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")


class StowView(APIView):
    """POST ``multipart/related; type="application/dicom"`` to store instances; the answer is
    the Store Instances Response Module (200 all stored, 202 some failed, 409 none stored)."""

    authentication_classes = [SenderTokenAuthentication]
    throttle_classes = [SenderThrottle]
    renderer_classes = [JSONRenderer]
    parser_classes: list[Any] = []
    content_negotiation_class = _FirstRenderer
    # Not part of the device API's OpenAPI schema: PS3.18 is its specification.
    schema = None

    def check_permissions(self, request: Request) -> None:
        if not isinstance(request.auth, DicomWebSender):
            raise exceptions.NotAuthenticated(
                "Send the sender's token: 'Authorization: Bearer <sender token>'."
            )

    def post(self, request: Request, study_uid: str = "") -> HttpResponse:
        if study_uid and not valid_uid(study_uid):
            return _refusal(400, "The study in the URL is not a valid DICOM UID.")
        try:
            content_type = stow_content_type(request.META.get("CONTENT_TYPE", ""))
        except MultipartInvalid as exc:
            return _refusal(400, str(exc))
        if isinstance(content_type, str):
            return _refusal(415, content_type)
        read = _body_reader(request)
        if isinstance(read, HttpResponse):
            return read
        try:
            parts = multipart_split(
                read,
                boundary=content_type.boundary,
                max_parts=MAX_FILES_PER_UPLOAD,
                max_part_bytes=settings.DIAGNOSIS_MAX_FILE_BYTES,
            )
        except MultipartInvalid as exc:
            return _refusal(400, str(exc))
        except MultipartTooLarge as exc:
            return _refusal(413, str(exc))
        try:
            if not parts:
                return _refusal(400, "The multipart body holds no part.")
            result = stow_store(
                sender=request.auth, parts=parts, study_uid=study_uid, request=request._request
            )
        finally:
            for part in parts:
                part.file.close()
        status = 200 if result.stored == len(parts) else 202 if result.stored else 409
        return HttpResponse(
            json.dumps(store_response(result.outcomes)),
            status=status,
            content_type="application/dicom+json",
        )


def _body_reader(request: Request) -> Callable[[int], bytes] | HttpResponse:
    """How to read the request body, or the refusal: by its Content-Length (413 over the cap
    before a byte is read), or a chunked body the server has de-chunked (gunicorn sets
    ``wsgi.input_terminated``), read up to the cap and refused (413) past it."""
    raw = request.META.get("CONTENT_LENGTH") or ""
    cap = settings.MEDAI_DICOMWEB_MAX_REQUEST_BYTES
    if raw in ("", "0") and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        stream = request.META.get("wsgi.input")
        if request.META.get("wsgi.input_terminated") and stream is not None:
            return _CappedStream(stream, cap=cap).read
        # A server that leaves the chunks to the application (Django's runserver, wsgiref)
        # hands Django a body it reads as empty.
        return _refusal(
            411,
            "This server cannot read a chunked body: send it with a Content-Length "
            '(Orthanc: "ChunkedTransfers": false for this server), or run MedAI under '
            "gunicorn (the Procfile's web process), which reads chunked bodies.",
        )
    if raw in ("", "0"):
        return _refusal(400, "The request has no body.")
    try:
        length = int(raw)
    except ValueError:
        return _refusal(400, "The Content-Length is not a number.")
    if problem := upload_size_problem(
        length, cap=cap, noun="request", purpose=" for one STOW-RS request"
    ):
        return _refusal(413, problem + _SPLIT_HINT)
    return request._request.read


_SPLIT_HINT = " Send the study in several requests."


class _CappedStream:
    """A de-chunked request body read at most ``cap`` bytes far: MultipartTooLarge past it
    (the whole body is never held in memory: the splitter spools each part to a file)."""

    def __init__(self, stream: Any, *, cap: int) -> None:
        self.stream = stream
        self.cap = cap
        self.seen = 0

    def read(self, size: int) -> bytes:
        data = self.stream.read(min(size, self.cap + 1 - self.seen))
        self.seen += len(data)
        if self.seen > self.cap:
            raise MultipartTooLarge(
                upload_size_problem(
                    None, cap=self.cap, noun="request", purpose=" for one STOW-RS request"
                )
                + _SPLIT_HINT
            )
        return bytes(data)


stow_view = StowView.as_view()
