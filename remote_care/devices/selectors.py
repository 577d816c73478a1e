"""Reads of devices, scoped to the user's care teams."""

from __future__ import annotations

from typing import Any

from medai_site.patients.selectors import patient_list
from remote_care.models import Device


def device_get(*, user: Any, pk: int) -> Device:
    """A device of one of the user's patients; Device.DoesNotExist otherwise."""
    return Device.objects.select_related("patient").get(pk=pk, patient__in=patient_list(user=user))
