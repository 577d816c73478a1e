"""The device REST API: devices post vital signs with their token."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
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
from remote_care.models import Device, Waveform
from remote_care.serializers import (
    MAX_BATCH,
    AwareDateTimeField,
    FiniteFloatField,
    ObservationSerializer,
    observation_fast,
)
from remote_care.services import device_authenticate, observation_future_limit, observations_ingest
from remote_care.waveforms import WaveformRejected, samples_check, waveform_store


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

    target_class = "remote_care.api.DeviceTokenAuthentication"
    name = "deviceToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "mdv_<prefix>_<secret>"}


class DeviceThrottle(SimpleRateThrottle):
    """Per-device request rate (a batch counts once), so one faulty device cannot flood us."""

    scope = "device"
    rate = "120/min"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        device = getattr(request, "auth", None)
        return f"throttle_device_{device.token_prefix}" if isinstance(device, Device) else None


class DeviceAPIView(APIView):
    authentication_classes = [DeviceTokenAuthentication]
    throttle_classes = [DeviceThrottle]
    parser_classes = [JSONParser]
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
        request=ObservationSerializer(many=True),
        responses={
            201: OpenApiTypes.OBJECT,
            200: OpenApiTypes.OBJECT,
            400: OpenApiTypes.OBJECT,
            413: OpenApiTypes.OBJECT,
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
        valid, valid_index, rejected = [], [], []
        for index, item in enumerate(items):
            fast = observation_fast(item)
            if fast is not None:
                valid.append(fast)
                valid_index.append(index)
                continue
            serializer = ObservationSerializer(data=item if isinstance(item, dict) else {})
            if isinstance(item, dict) and serializer.is_valid():
                valid.append(serializer.validated_data)
                valid_index.append(index)
            else:
                errors = (
                    serializer.errors
                    if isinstance(item, dict)
                    else {"non_field_errors": ["must be a JSON object"]}
                )
                rejected.append({"index": index, "errors": errors})
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


class WaveformSerializer(serializers.Serializer):
    """The envelope of a posted recording (the samples are checked by ``samples_check``)."""

    kind = serializers.ChoiceField(choices=Waveform.Kind.choices)
    sampling_rate = FiniteFloatField(help_text="Hz (25 to 2000).")
    started_at = AwareDateTimeField(help_text="First sample's time (ISO 8601 with a time zone).")
    samples = serializers.ListField(
        child=FiniteFloatField(), help_text="At most 300,000 samples and 600 s."
    )

    def validate_started_at(self, value: Any) -> Any:
        if value > observation_future_limit():
            raise serializers.ValidationError("is in the future")
        return value


class WaveformsView(DeviceAPIView):
    """POST one ECG or PPG recording; it is stored and analysed by a background job."""

    @extend_schema(
        summary="Post an ECG or PPG recording",
        request=WaveformSerializer,
        responses={
            202: OpenApiResponse(OpenApiTypes.OBJECT, description="Stored; analysis queued."),
            400: OpenApiTypes.OBJECT,
            413: OpenApiTypes.OBJECT,
        },
    )
    def post(self, request: Request) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        samples = data.get("samples")
        # The envelope is validated without the samples: a per-item serializer field would
        # cost seconds on 300,000 numbers; samples_check does it with numpy.
        envelope = WaveformSerializer(data={**data, "samples": []})
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
