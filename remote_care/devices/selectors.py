"""Reads of devices and their observation sets (a device is scoped to the user's care teams)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from medai_site.patients.selectors import patient_list
from remote_care.models import Device, Observation

if TYPE_CHECKING:
    from medai_site.core.roles import AnyUser


def device_get(*, user: AnyUser, pk: int) -> Device:
    """A device of one of the user's patients; Device.DoesNotExist otherwise."""
    return Device.objects.select_related("patient").get(pk=pk, patient__in=patient_list(user=user))


def devices_for(*, patient: Any) -> QuerySet[Device]:
    """The patient's devices, active and revoked."""
    return patient.devices.all()


def observations_for_export(*, patient: Any) -> QuerySet[Observation]:
    """Every observation set of the patient, oldest first (the FHIR export's order)."""
    return Observation.objects.filter(patient=patient).order_by("taken_at", "pk")


def observations_recent(*, patient: Any, limit: int = 20) -> QuerySet[Observation]:
    """The patient's latest observation sets, newest first."""
    return Observation.objects.filter(patient=patient).select_related("device")[:limit]
