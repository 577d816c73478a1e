"""Demo data for seed_demo: remote monitoring replayed from PhysioNet 2012 ICU stays, and the
first deterioration model."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from medai_site.core.demo import DemoRun
from medai_site.registry.models import ModelVersion
from remote_care.devices.services import device_register, observations_ingest
from remote_care.models import Monitoring
from remote_care.risk.services import RISK_TASK, risk_training_start

#: Demo: each clinician's first patients (by MRN) put under remote monitoring by seed_demo.
DEMO_MONITORED_PER_CLINICIAN = 8
#: How long a charted value stands in a demo set (as a chart's "latest value"): vital signs 4 h,
#: consciousness and oxygen 12 h.
_DEMO_CARRY = {"consciousness": timedelta(hours=12), "on_oxygen": timedelta(hours=12)}
_DEMO_CARRY_DEFAULT = timedelta(hours=4)


def _hourly_sets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ICU charting (one parameter or two per charted minute) as a home device's sets: one
    set per hour with readings, at the hour's last reading, holding each parameter's latest
    value still within its carry time; oxygen is "air" unless ventilation was charted within
    12 h (a chart has no row for not ventilated)."""
    latest: dict[str, tuple[datetime, Any]] = {}
    by_hour: dict[datetime, datetime] = {}
    for row in rows:
        by_hour[row["taken_at"].replace(minute=0, second=0)] = row["taken_at"]
    out = []
    i = 0
    for end in sorted(by_hour.values()):
        while i < len(rows) and rows[i]["taken_at"] <= end:
            for key, value in rows[i].items():
                if key != "taken_at":
                    latest[key] = (rows[i]["taken_at"], value)
            i += 1
        item: dict[str, Any] = {"taken_at": end, "on_oxygen": False}
        for key, (when, value) in latest.items():
            if end - when <= _DEMO_CARRY.get(key, _DEMO_CARRY_DEFAULT):
                item[key] = value
        out.append(item)
    return out


def demo_monitoring_ensure(*, clinicians: list[Any]) -> str:
    """Demo only (seed_demo): put each clinician's first DEMO_MONITORED_PER_CLINICIAN patients
    (by MRN) under remote monitoring with a home kit, and replay the vital signs of a real
    PhysioNet 2012 ICU stay, its 48 h ending now, through the device path: every set is
    validated as the API validates it, then stored, NEWS2-scored and alerted on by
    ``observations_ingest``. The chart's readings become hourly sets of the latest values, as
    a home kit sends them (:func:`_hourly_sets`). One patient in three gets the stay of a
    patient who died in hospital. The board, the charts, the risk model and the population
    page then have real data to show. Idempotent (nothing once any patient is monitored);
    returns a console line (empty when nothing was done, e.g. PhysioNet 2012 is missing)."""
    from pathlib import Path

    from medai_site.patients.selectors import patient_list
    from remote_care.devices.serializers import ObservationSerializer
    from remote_care.ml.physionet import load_set_a, vitals_from_stay

    if Monitoring.objects.exists():
        return ""
    folder = Path(settings.MEDAI_PHYSIONET2012_DIR)
    archive, outcomes = folder / "set-a.tar.gz", folder / "Outcomes-a.txt"
    if not (archive.is_file() and outcomes.is_file()):
        return ""
    stays = load_set_a(archive, outcomes, cache_dir=settings.MEDAI_CACHE_DIR)
    died = iter([s for s in stays if s.death])
    survived = iter([s for s in stays if not s.death])
    now = timezone.now().replace(microsecond=0)
    origin = now - timedelta(hours=48)
    patients = sets = alerts = 0
    for clinician in clinicians:
        for patient in patient_list(user=clinician).order_by("mrn")[:DEMO_MONITORED_PER_CLINICIAN]:
            stay = next(died) if patients % 3 == 0 else next(survived)
            items = []
            for reading in _hourly_sets(vitals_from_stay(stay, origin)):
                if reading["taken_at"] > now:
                    continue
                serializer = ObservationSerializer(
                    data={**reading, "taken_at": reading["taken_at"].isoformat()}
                )
                if serializer.is_valid():  # as a device's batch: invalid sets are refused
                    items.append(serializer.validated_data)
            device = device_register(
                patient=patient, label="Demo home kit", registered_by=clinician
            ).device
            result = observations_ingest(device=device, items=items)
            patients += 1
            sets += len(result.stored)
            alerts += len(result.alerts)
    if not patients:
        return ""
    return (
        f"put {patients} demo patients under remote monitoring ({sets} observation sets "
        f"replayed from PhysioNet 2012 ICU stays over the last 48 h, {alerts} alerts)"
    )


def demo_risk_ensure(*, user: Any, train: bool) -> str:
    """While the deterioration task has never had a model in service, put the shipped GRU
    (data/models/remote-care-deterioration/) into service (bootstrap, validated here and now);
    when it is missing or refused and ``train``, queue a vitals-input run that goes into
    service when done. Idempotent; returns a line for the console ("" if nothing)."""
    from medai_site.jobs.models import Job
    from medai_site.registry.services import model_task_bootstrappable
    from medai_site.registry.shipped import ShippedArtifactError, shipped_model_install
    from remote_care.risk.training import SHIPPED_CONFIG, SHIPPED_SLUG

    if not model_task_bootstrappable(task=RISK_TASK):
        return ""
    try:
        return shipped_model_install(slug=SHIPPED_SLUG, user=user).note("deterioration model")
    except ShippedArtifactError as exc:
        problem = str(exc)
    if not train or ModelVersion.objects.filter(task=RISK_TASK).exists():
        return problem
    if Job.objects.filter(
        kind="remote_care.risk_training", status__in=["queued", "running"]
    ).exists():
        return problem
    risk_training_start(**SHIPPED_CONFIG, activate=True, user=user)
    return problem + "; queued the deterioration model instead (GRU on PhysioNet 2012)"


def demo_monitoring_seed(run: DemoRun) -> str:
    """seed_demo's monitoring step: :func:`demo_monitoring_ensure` for the demo clinicians,
    unless the run asks for no monitoring."""
    return demo_monitoring_ensure(clinicians=run.clinicians) if run.monitoring else ""


def demo_risk_seed(run: DemoRun) -> str:
    """seed_demo's risk step: :func:`demo_risk_ensure` for the demo model admin."""
    return demo_risk_ensure(user=run.model_admin, train=run.train)
