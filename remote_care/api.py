"""The device REST API: devices post vital signs with their token."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from remote_care.models import Device
from remote_care.serializers import MAX_BATCH, ObservationSerializer
from remote_care.services import device_authenticate, observations_ingest


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
