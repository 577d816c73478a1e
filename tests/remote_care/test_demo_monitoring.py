"""seed_demo's remote monitoring: real PhysioNet vitals replayed through the device path."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from remote_care.demo import DEMO_MONITORED_PER_CLINICIAN, demo_monitoring_ensure
from remote_care.ml.physionet import load_set_a, stay_from_vitals, vitals_from_stay
from remote_care.models import Alert, Device, Monitoring, Observation
from tests.platform.factories import patient_for

pytestmark = pytest.mark.django_db
DATA = Path(__file__).resolve().parents[2] / "data" / "physionet2012"


def test_vitals_from_stay_round_trips_through_stay_from_vitals():
    stay = load_set_a(DATA / "set-a.tar.gz", DATA / "Outcomes-a.txt", limit=5)[0]
    origin = timezone.now().replace(microsecond=0)
    rows = vitals_from_stay(stay, origin)
    assert rows and all(r["taken_at"] >= origin for r in rows)
    back = stay_from_vitals(rows, start=origin)
    # Every heart-rate value of the stay comes back at its minute.
    _, hr_values = stay.series("HR")
    hr_times, hr_back = back.series("HR")
    assert list(hr_back) == pytest.approx(list(hr_values))
    assert len(hr_times) == len(hr_values)


def test_demo_monitoring_replays_real_stays_through_the_ingest_path(users, settings, tmp_path):
    settings.MEDAI_PHYSIONET2012_DIR = DATA
    settings.MEDAI_CACHE_DIR = tmp_path
    for clinician in (users.clinician_a, users.clinician_b):
        for _ in range(DEMO_MONITORED_PER_CLINICIAN + 1):
            patient_for(clinician)
    note = demo_monitoring_ensure(clinicians=[users.clinician_a, users.clinician_b])
    assert Monitoring.objects.count() == 2 * DEMO_MONITORED_PER_CLINICIAN
    assert Device.objects.count() == 2 * DEMO_MONITORED_PER_CLINICIAN
    now = timezone.now()
    obs = Observation.objects.all()
    assert obs.count() > 20 * 2 * DEMO_MONITORED_PER_CLINICIAN  # hourly ICU charting
    assert not obs.filter(taken_at__gt=now).exists()
    assert not obs.filter(taken_at__lt=now - timedelta(hours=49)).exists()
    # NEWS2 scored server-side, and alerts raised as for any device.
    assert obs.filter(news2_total__isnull=False).count() > obs.count() // 2
    assert Alert.objects.exists()
    assert f"{2 * DEMO_MONITORED_PER_CLINICIAN} demo patients" in note
    # Each clinician's monitored patients are their own.
    for clinician in (users.clinician_a, users.clinician_b):
        mine = Monitoring.objects.filter(patient__memberships__user=clinician)
        assert mine.count() == DEMO_MONITORED_PER_CLINICIAN
    # Idempotent.
    assert demo_monitoring_ensure(clinicians=[users.clinician_a]) == ""
    assert Monitoring.objects.count() == 2 * DEMO_MONITORED_PER_CLINICIAN


def test_demo_monitoring_without_the_data_set_does_nothing(users, settings, tmp_path):
    settings.MEDAI_PHYSIONET2012_DIR = tmp_path / "missing"
    patient_for(users.clinician_a)
    assert demo_monitoring_ensure(clinicians=[users.clinician_a]) == ""
    assert not Monitoring.objects.exists()
