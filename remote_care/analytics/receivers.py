"""The population roll-ups carry each patient's cohort keys (sex, birth date, SpO2 scale, care
teams): when one changes, that patient's rolled-up days are recomputed once the change commits,
so the page never counts a patient in a team or band they have left.

Only a change of a key does: a Patient is saved for many other reasons (name, contact details)
and Monitoring for every alert-state step, and each recompute rereads all of the patient's
rolled-up days from the raw sets."""

from __future__ import annotations

from typing import Any

from django.db import models, transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone

from medai_site.patients.models import CareTeamMembership, Patient
from remote_care.analytics.services import (
    analytics_rollup_patients_refresh,
    analytics_rollup_refresh,
)
from remote_care.models import Alert, Monitoring

# Per model, the fields the roll-ups read (services._patient_keys). patient_id is one of them
# where a row can move between patients, so that both the old and the new patient refresh.
COHORT_FIELDS: dict[type[models.Model], tuple[str, ...]] = {
    Patient: ("sex", "birth_date"),
    Monitoring: ("patient_id", "spo2_scale"),
    CareTeamMembership: ("patient_id", "user_id", "role"),
}
_SNAPSHOT = "_rollup_keys_before_save"


def _refresh_on_commit(patient_ids: set[int | None]) -> None:
    pids = sorted(p for p in patient_ids if p is not None)
    if pids:
        transaction.on_commit(lambda: analytics_rollup_patients_refresh(patient_ids=pids))


def _patient_of(instance: models.Model) -> int | None:
    return instance.pk if isinstance(instance, Patient) else instance.patient_id  # type: ignore[attr-defined]


def _touches_keys(sender: type[models.Model], update_fields: Any) -> bool:
    """False when the save names its fields and none is a cohort key (no query needed)."""
    if update_fields is None:
        return True
    fields = COHORT_FIELDS[sender]
    return any(f in fields or f"{f}_id" in fields for f in update_fields)


@receiver(pre_save, sender=Patient, dispatch_uid="rollup_patient_snapshot")
@receiver(pre_save, sender=Monitoring, dispatch_uid="rollup_monitoring_snapshot")
@receiver(pre_save, sender=CareTeamMembership, dispatch_uid="rollup_team_snapshot")
def _snapshot_keys(sender: type[models.Model], instance: Any, **kwargs: Any) -> None:
    # The stored keys, read just before the write, are what the roll-ups were built from; an
    # in-memory copy from load time could be stale if another request changed the row since.
    setattr(instance, _SNAPSHOT, None)
    if (
        instance.pk is None
        or kwargs.get("raw")
        or not _touches_keys(sender, kwargs.get("update_fields"))
    ):
        return
    fields = COHORT_FIELDS[sender]
    before = (
        sender._default_manager.using(kwargs.get("using"))
        .filter(pk=instance.pk)
        .values_list(*fields)
    )
    setattr(instance, _SNAPSHOT, before.first())


@receiver(post_save, sender=Patient, dispatch_uid="rollup_patient_saved")
@receiver(post_save, sender=Monitoring, dispatch_uid="rollup_monitoring_saved")
@receiver(post_save, sender=CareTeamMembership, dispatch_uid="rollup_team_saved")
def _keys_saved(sender: type[models.Model], instance: Any, created: bool, **kwargs: Any) -> None:
    before = getattr(instance, _SNAPSHOT, None)
    if created or before is None:
        # A new Patient has no rolled-up days yet; a new Monitoring or membership changes the
        # keys of a patient who may have some (a row saved with an explicit new pk lands here too).
        if created and sender is not Patient:
            _refresh_on_commit({_patient_of(instance)})
        return
    after = tuple(getattr(instance, f) for f in COHORT_FIELDS[sender])
    if after != before:
        old_patient = before[0] if sender is not Patient else instance.pk
        _refresh_on_commit({old_patient, _patient_of(instance)})


def _refresh_alert_day(alert: Alert) -> None:
    pid, day = alert.patient_id, timezone.localtime(alert.raised_at).date()
    transaction.on_commit(lambda: analytics_rollup_refresh(patient_ids=[pid], days=[day]))


@receiver(post_save, sender=Alert, dispatch_uid="rollup_alert_saved")
def _alert_saved(sender: Any, instance: Alert, created: bool, **kwargs: Any) -> None:
    # Alerts are raised with their set in the ingest's transaction (the catch-up job rolls
    # that patient-day up, alert included); acknowledging one later moves it from the
    # unacknowledged to the acknowledged cells and adds its delay (a save that names its
    # fields and not acknowledged_at, an escalation or resolution, changes no figure).
    update_fields = kwargs.get("update_fields")
    if created or kwargs.get("raw"):
        return
    if update_fields is None or "acknowledged_at" in update_fields:
        _refresh_alert_day(instance)


@receiver(post_delete, sender=Alert, dispatch_uid="rollup_alert_deleted")
def _alert_deleted(sender: Any, instance: Alert, **kwargs: Any) -> None:
    # A deleted alert must leave its patient-day's alert counts, delays and bits.
    _refresh_alert_day(instance)


@receiver(post_delete, sender=CareTeamMembership, dispatch_uid="rollup_team_deleted")
def _membership_deleted(sender: Any, instance: CareTeamMembership, **kwargs: Any) -> None:
    _refresh_on_commit({instance.patient_id})
