"""The population roll-ups carry each patient's cohort keys (sex, birth date, SpO2 scale, care
teams): when one changes, that patient's rolled-up days are recomputed once the change commits,
so the page never counts a patient in a team or band they have left."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from medai_site.patients.models import CareTeamMembership, Patient
from remote_care.analytics.services import analytics_rollup_patients_refresh
from remote_care.models import Monitoring


def _refresh_on_commit(patient_id: int | None) -> None:
    if patient_id is not None:
        transaction.on_commit(lambda: analytics_rollup_patients_refresh(patient_ids=[patient_id]))


@receiver(post_save, sender=CareTeamMembership, dispatch_uid="rollup_team_saved")
@receiver(post_delete, sender=CareTeamMembership, dispatch_uid="rollup_team_deleted")
@receiver(post_save, sender=Monitoring, dispatch_uid="rollup_monitoring_saved")
def _patient_keys_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    _refresh_on_commit(instance.patient_id)


@receiver(post_save, sender=Patient, dispatch_uid="rollup_patient_saved")
def _patient_saved(sender: Any, instance: Patient, created: bool, **kwargs: Any) -> None:
    if not created:
        _refresh_on_commit(instance.pk)
