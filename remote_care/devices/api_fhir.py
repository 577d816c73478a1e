"""FHIR R4 endpoints: devices post a Bundle of vital-sign Observations; clinicians export a
patient's observation sets as a searchset Bundle."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from medai_site.audit.exceptions import ObjectNotVisible
from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.core.roles import Role, role_required
from medai_site.patients.models import Patient
from medai_site.patients.selectors import patient_get
from remote_care.devices.api import DEVICE_ERRORS, DeviceAPIView, DeviceJSONParser
from remote_care.devices.fhir import (
    FhirInvalid,
    bundle_export,
    bundle_observation_sets,
    bundle_parse,
)
from remote_care.devices.selectors import observations_for_export
from remote_care.devices.serializers import (
    MAX_BATCH,
    ErrorDetailSerializer,
    FhirBundleSerializer,
    FhirInvalidSerializer,
    FhirResultSerializer,
    ObservationSerializer,
)
from remote_care.devices.services import observations_ingest

FHIR_JSON = "application/fhir+json"
# Six vitals per set at most, so this many entries can still fit MAX_BATCH sets.
MAX_ENTRIES = 6 * MAX_BATCH


class FhirJSONParser(DeviceJSONParser):
    """``application/fhir+json`` bodies (plain ``application/json`` is accepted too)."""

    media_type = FHIR_JSON


class FhirBundleView(DeviceAPIView):
    """POST a FHIR R4 Bundle (batch, transaction or collection) of vital-sign Observations."""

    parser_classes = [DeviceJSONParser, FhirJSONParser]

    @extend_schema(
        summary="Post vital signs as a FHIR R4 Bundle",
        description=(
            "Observations with LOINC 8867-4 (HR), 59408-5 or 2708-6 (SpO2), 9279-1 (RR), "
            "8310-5 (temperature), 8480-6/8462-4 (BP) or the 85354-9 BP panel, grouped by "
            "effectiveDateTime into observation sets, each checked like a set posted to "
            "/observations/. Observation.subject and .device are optional; when given they "
            "must name the token's patient (Patient/<id> or the MRN as identifier) and device "
            "(Device/<id> or the token prefix as identifier). Every entry is checked on its "
            "own; rejected entries are listed by index with their reasons."
        ),
        request={FHIR_JSON: FhirBundleSerializer, "application/json": FhirBundleSerializer},
        responses={
            201: OpenApiResponse(FhirResultSerializer, description="Some sets stored."),
            200: OpenApiResponse(FhirResultSerializer, description="All sets already stored."),
            400: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="FhirBundleRefused",
                    serializers=[FhirResultSerializer, FhirInvalidSerializer],
                    resource_type_field_name=None,
                ),
                description="Not a Bundle of an accepted type, or no valid set.",
            ),
            **DEVICE_ERRORS,
            413: OpenApiResponse(ErrorDetailSerializer, description="Too many entries or sets."),
        },
    )
    def post(self, request: Request) -> Response:
        data = request.data
        entries = data.get("entry") if isinstance(data, dict) else None
        if isinstance(entries, list) and len(entries) > MAX_ENTRIES:
            return Response(
                {
                    "detail": f"At most {MAX_ENTRIES} entries per Bundle; this one has "
                    f"{len(entries)}."
                },
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        try:
            checked = bundle_parse(data)
        except FhirInvalid as exc:
            return Response(
                {"detail": "Not a valid FHIR R4 Bundle.", "fhir_errors": str(exc)},
                status=status.HTTP_400_BAD_REQUEST,
            )
        parsed = bundle_observation_sets(checked, device=request.auth)
        rejected = list(parsed.rejected)
        valid: list[dict[str, Any]] = []
        valid_entries: list[list[int]] = []
        for item, indices in zip(parsed.sets, parsed.entries, strict=True):
            serializer = ObservationSerializer(data=item)
            if serializer.is_valid():
                valid.append(serializer.validated_data)
                valid_entries.append(indices)
            else:
                rejected.extend({"entry": i, "errors": serializer.errors} for i in indices)
        if len(valid) > MAX_BATCH:
            return Response(
                {"detail": f"At most {MAX_BATCH} observation sets per Bundle."},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        result = observations_ingest(device=request.auth, items=valid)
        body = {
            "sets": len(valid),
            "stored": len(result.stored),
            "duplicates": sorted(i for d in result.duplicates for i in valid_entries[d]),
            "rejected": sorted(rejected, key=lambda r: r["entry"]),
            "alerts": [
                {"level": a.level, "news2_total": a.news2_total, "reason": a.reason}
                for a in result.alerts
            ],
        }
        if not valid:
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        code = status.HTTP_201_CREATED if result.stored else status.HTTP_200_OK
        return Response(body, status=code)


@require_GET
@role_required(Role.CLINICIAN)
def patient_fhir_export_view(request: HttpRequest, patient_pk: int) -> JsonResponse:
    """The patient's observation sets (oldest first) as a FHIR searchset Bundle; audited."""
    try:
        patient = patient_get(user=request.user, pk=patient_pk)
    except Patient.DoesNotExist:
        raise ObjectNotVisible(
            "No such patient in your care teams.", model=Patient, pk=patient_pk
        ) from None
    observations = observations_for_export(patient=patient)
    bundle = bundle_export(patient=patient, observations=observations)
    audit_record(
        action=AuditEvent.Action.EXPORTED,
        request=request,
        obj=patient,
        patient=patient,
        detail={"format": "FHIR R4 Bundle", "resources": len(bundle.get("entry", []))},
    )
    response = JsonResponse(bundle, content_type=FHIR_JSON)
    response["Content-Disposition"] = f'inline; filename="patient-{patient.pk}-vitals.json"'
    return response
