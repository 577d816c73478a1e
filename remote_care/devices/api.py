"""The device REST API: devices post vital signs with their token."""

from __future__ import annotations

import codecs
import json
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from medai_site.core.roles import Role, has_role
from remote_care.devices.serializers import (
    MAX_BATCH,
    AwareDateTimeField,
    ErrorDetailSerializer,
    FieldErrorsSerializer,
    FiniteFloatField,
    ObservationBatchSerializer,
    ObservationSerializer,
    ObservationsResultSerializer,
    WaveformAcceptedSerializer,
    observations_validate,
    taken_at_check,
)
from remote_care.devices.services import device_authenticate, observations_ingest
from remote_care.devices.waveforms import (
    MAX_FS,
    MAX_SAMPLES,
    MAX_SECONDS,
    MIN_FS,
    MIN_SECONDS,
    WaveformRejected,
    samples_check,
    waveform_store,
)
from remote_care.models import Device, Waveform


class DevicePrincipal:
    """The authenticated caller of the device API: a device, never a person."""

    is_authenticated = True
    is_active = True
    is_staff = False

    def __init__(self, device: Device) -> None:
        self.device = device

    def get_username(self) -> str:
        return f"device:{self.device.token_prefix}"


class DeviceTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer mdv_<prefix>_<secret>``."""

    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[DevicePrincipal, Device] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "The Authorization header must be 'Bearer <device token>'."
            )
        device = device_authenticate(header[1].decode(errors="replace"))
        if device is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked device token.")
        return DevicePrincipal(device), device

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="medai-devices"'


class DeviceTokenScheme(OpenApiAuthenticationExtension):
    """OpenAPI description of the device token (registered with drf-spectacular on import)."""

    target_class = "remote_care.devices.api.DeviceTokenAuthentication"
    name = "deviceToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "mdv_<prefix>_<secret>"}


class DeviceJSONParser(JSONParser):
    """JSON from devices, parsed so that one bad number costs only the item holding it.

    ``NaN``/``Infinity`` literals (not JSON, but what many devices' serialisers write for a
    missing reading) parse as non-finite floats, which the per-item validation then refuses
    with a message; DRF's strict parser would refuse the whole batch instead. Integers longer
    than 20 digits parse as floats (infinite past 1e308): no measurement has that many digits,
    Python refuses int strings over 4300 digits, and a huge int overflows float and the
    database. Nesting too deep for the decoder is a 400, not a RecursionError.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            raw = stream.read()
            text = raw.decode(encoding)
            # The hook costs a Python call per number; only a body with a run of 21 digits
            # somewhere (most often inside a string or a fraction) can hold such an integer.
            hook = _json_int if _long_digits(raw, text, encoding) else int
            return json.loads(text, parse_int=hook)
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None


_LONG_DIGITS = re.compile(r"[0-9]{21}")
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_RUN_OF_21 = b"0" * 21


def _long_digits(raw: bytes, text: str, encoding: str) -> bool:
    """Whether the body has a run of 21 ASCII digits. In UTF-8 (what devices send) a digit
    byte is always that digit, so the bytes are searched: a C table lookup and a substring
    search take a fifth of the regular expression's time on a 1 MB batch."""
    if codecs.lookup(encoding).name == "utf-8":
        return _RUN_OF_21 in raw.translate(_DIGITS_AS_ZERO)
    return _LONG_DIGITS.search(text) is not None


def _json_int(text: str) -> int | float:
    return int(text) if len(text) <= 20 else float(text)


class DeviceThrottle(SimpleRateThrottle):
    """Per-device request rate (a batch counts once), so one faulty device cannot flood us.

    The rate is ``settings.MEDAI_DEVICE_RATE_LIMIT`` (e.g. "120/min"; None turns it off, as
    the API fuzz test does so that its cases reach the validation). Counts live in Django's
    default cache, so with a shared cache (``CACHE_URL``) every web process counts together.
    """

    scope = "device"

    def get_rate(self) -> str | None:
        return settings.MEDAI_DEVICE_RATE_LIMIT or None

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        device = getattr(request, "auth", None)
        return f"throttle_device_{device.token_prefix}" if isinstance(device, Device) else None


DEVICE_ERRORS = {
    401: OpenApiResponse(ErrorDetailSerializer, description="No, unknown or revoked token."),
    415: OpenApiResponse(ErrorDetailSerializer, description="The body is not JSON."),
    429: OpenApiResponse(
        ErrorDetailSerializer, description="Over the device's rate limit; see Retry-After."
    ),
}


class DeviceAPIView(APIView):
    authentication_classes = [DeviceTokenAuthentication]
    throttle_classes = [DeviceThrottle]
    parser_classes = [DeviceJSONParser]
    renderer_classes = [JSONRenderer]
    # Read by the OpenAPI schema (no anonymous access); the check itself is below.
    permission_classes = [IsAuthenticated]

    def check_permissions(self, request: Request) -> None:
        if not isinstance(request.auth, Device):
            raise exceptions.NotAuthenticated(
                "Send the device's token: 'Authorization: Bearer <device token>'."
            )


class ObservationsView(DeviceAPIView):
    """POST one observation set, or ``{"observations": [...]}`` (up to 10,000 per request).

    Valid items are stored even when others are rejected; the response lists the rejected
    ones by index with a message per field. A resent item (same device and timestamp) is
    reported as a duplicate and stored only once.
    """

    @extend_schema(
        summary="Post observation sets",
        description=(
            'One observation set, or {"observations": [...]} with 1 to '
            f"{MAX_BATCH:,} sets. Each set needs `taken_at` and at least one vital sign; "
            "diastolic must be below systolic. Non-finite numbers (NaN, Infinity, 1e400) are "
            "refused per item. At most the device's rate limit of requests "
            "(MEDAI_DEVICE_RATE_LIMIT, 120 a minute by default; a batch counts once)."
        ),
        request=PolymorphicProxySerializer(
            component_name="ObservationPost",
            serializers=[ObservationSerializer, ObservationBatchSerializer],
            resource_type_field_name=None,
        ),
        responses={
            201: OpenApiResponse(ObservationsResultSerializer, description="Some sets stored."),
            200: OpenApiResponse(
                ObservationsResultSerializer, description="Every valid set was already stored."
            ),
            400: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="ObservationsRefused",
                    serializers=[ObservationsResultSerializer, ErrorDetailSerializer],
                    resource_type_field_name=None,
                ),
                description="No valid set (rejected items listed by index), or not JSON.",
            ),
            **DEVICE_ERRORS,
            413: OpenApiResponse(ErrorDetailSerializer, description=f"Over {MAX_BATCH:,} sets."),
        },
    )
    def post(self, request: Request) -> Response:
        payload = request.data
        items = payload.get("observations") if isinstance(payload, dict) else None
        if items is None:
            items = [payload]
        if not isinstance(items, list) or not items:
            return Response(
                {"detail": 'Send an observation object or {"observations": [...]}.'},
                status=status.HTTP_400_BAD_REQUEST,
            )
        if len(items) > MAX_BATCH:
            return Response(
                {
                    "detail": f"At most {MAX_BATCH} observations per request; "
                    f"this one has {len(items)}."
                },
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        valid, valid_index, rejected = observations_validate(items)
        result = observations_ingest(device=request.auth, items=valid)
        body = {
            "stored": len(result.stored),
            "duplicates": [valid_index[i] for i in result.duplicates],
            "rejected": rejected,
            "alerts": [
                {"level": a.level, "news2_total": a.news2_total, "reason": a.reason}
                for a in result.alerts
            ],
            "news2": [
                {
                    "taken_at": o.taken_at.isoformat(),
                    "total": o.news2_total,
                    "partial": o.news2_partial,
                }
                for o in result.stored
            ],
        }
        if not valid:
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        code = status.HTTP_201_CREATED if result.stored else status.HTTP_200_OK
        return Response(body, status=code)


_FS_MESSAGE = f"must be between {MIN_FS:g} and {MAX_FS:g} Hz"


class WaveformEnvelopeSerializer(serializers.Serializer):
    """The envelope of a posted recording; the samples are checked by ``samples_check``: a
    per-item serializer field would cost seconds on 300,000 numbers, numpy does it at once."""

    kind = serializers.ChoiceField(
        choices=Waveform.Kind.choices, help_text="ecg (electrocardiogram) or ppg (pulse wave)."
    )
    sampling_rate = FiniteFloatField(
        min_value=MIN_FS,
        max_value=MAX_FS,
        help_text=f"Samples per second, Hz ({MIN_FS:g} to {MAX_FS:g}).",
        error_messages={"min_value": _FS_MESSAGE, "max_value": _FS_MESSAGE},
    )
    started_at = AwareDateTimeField(help_text="First sample's time (ISO 8601 with a time zone).")

    def validate_started_at(self, value: Any) -> Any:
        return taken_at_check(value)


class WaveformSerializer(WaveformEnvelopeSerializer):
    """The whole request as documented (the view validates the samples with numpy)."""

    samples = serializers.ListField(
        child=FiniteFloatField(),
        min_length=int(MIN_SECONDS * MIN_FS),
        max_length=MAX_SAMPLES,
        help_text=f"Finite numbers, {MIN_SECONDS:g} to {MAX_SECONDS:g} s at sampling_rate "
        f"(so at least {MIN_SECONDS:g} x sampling_rate) and at most {MAX_SAMPLES:,}.",
    )


class WaveformsView(DeviceAPIView):
    """POST one ECG or PPG recording; it is stored and analysed by a background job."""

    @extend_schema(
        summary="Post an ECG or PPG recording",
        description=(
            f"{MIN_SECONDS:g} to {MAX_SECONDS:g} s of samples (at most {MAX_SAMPLES:,}) at "
            f"{MIN_FS:g} to {MAX_FS:g} Hz, every sample a finite number in the device's unit "
            "(ECG mV, PPG arbitrary units). Stored, then analysed by a background job."
        ),
        request=WaveformSerializer,
        responses={
            202: OpenApiResponse(
                WaveformAcceptedSerializer, description="Stored; analysis queued."
            ),
            400: OpenApiResponse(FieldErrorsSerializer, description="Messages per field."),
            **DEVICE_ERRORS,
            413: OpenApiResponse(
                FieldErrorsSerializer, description="Too many samples or seconds; split it."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        samples = data.get("samples")
        envelope = WaveformEnvelopeSerializer(data=data)
        if not envelope.is_valid():
            return Response(envelope.errors, status=status.HTTP_400_BAD_REQUEST)
        fields = envelope.validated_data
        try:
            array = samples_check(samples, fields["sampling_rate"])
        except WaveformRejected as exc:
            code = (
                status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
                if exc.too_large
                else status.HTTP_400_BAD_REQUEST
            )
            return Response({"samples": [str(exc)]}, status=code)
        stored = waveform_store(
            device=request.auth,
            kind=fields["kind"],
            fs=fields["sampling_rate"],
            started_at=fields["started_at"],
            samples=array,
        )
        return Response(
            {
                "waveform": stored.waveform.pk,
                "job": stored.job_id,
                "samples": stored.waveform.n_samples,
                "duration_s": round(stored.waveform.n_samples / stored.waveform.fs, 3),
            },
            status=status.HTTP_202_ACCEPTED,
        )


# FHIR's JSON format has no room for unknown elements (the library refuses them), so the
# documented FHIR request shapes say so: a client generated from the schema, or a fuzzer,
# then sends what the API reads rather than elements that are refused anyway.
_CLOSED_COMPONENTS = (
    "FhirBundle",
    "FhirBundleEntry",
    "FhirObservation",
    "FhirCodeableConcept",
    "FhirCoding",
    "FhirQuantity",
    "FhirComponent",
    "FhirIdentifier",
    "FhirPatientReference",
    "FhirDeviceReference",
    "FhirCategory",
    "FhirCategoryCoding",
    "FhirEntryRequest",
    "FhirEntrySearch",
)


def schema_close_fhir_shapes(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular post-processing hook: no additional properties in the FHIR shapes."""
    schemas = result.get("components", {}).get("schemas", {})
    for name in _CLOSED_COMPONENTS:
        if name in schemas:
            schemas[name]["additionalProperties"] = False
    return result


def _docs_reader(request: HttpRequest) -> None:
    """PermissionDenied unless the signed-in user is staff or a clinician."""
    if not (request.user.is_staff or has_role(request.user, Role.CLINICIAN, Role.MODEL_ADMIN)):
        raise PermissionDenied("The API documentation is for clinicians and staff.")


_schema = SpectacularAPIView.as_view()


def api_schema_view(request: HttpRequest) -> HttpResponse:
    """The OpenAPI 3 schema of the remote-care API (YAML; ``?format=json`` for JSON)."""
    _docs_reader(request)
    return _schema(request)


@require_GET
def api_docs_view(request: HttpRequest) -> HttpResponse:
    """Swagger UI served from local static files (no CDN, no inline script)."""
    _docs_reader(request)
    return render(
        request,
        "remote_care/api_docs.html",
        {"schema_url": reverse("remote_care:api_schema") + "?format=json"},
    )
