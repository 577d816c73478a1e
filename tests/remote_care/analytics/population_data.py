"""A small hand-made monitored population whose every aggregate is worked out by hand in
test_dashboard.py.

Site time (Europe/London, GMT in early March 2026). Days: D1 Mon 2 March, D2 Tue 3 March,
D8 Mon 9 March (the next ISO week). NEWS2 totals (* = one parameter scored 3):

    patient  born        team      D1 12:00  D2 12:00        D8 12:00
    F1       1950-06-15  A (+B)    0         1, 2 (14:00)    0
    F2       1950-06-15  A         1         1               0
    F3       1950-06-15  A         2         3               0
    F4       1950-06-15  A         3*        4*              0
    F5       1946-03-03  A         5         8               0      (80 from 3 March)
    F6       1950-06-15  A         7         -               -      (SpO2 scale 2)
    M1       1990-01-01  B         2         -               6 (partial)
    M2       1990-01-01  B         4         -               -

Alerts (raised with their set; minutes to acknowledge): F6 D1 EMERGENCY 10; F5 D1 URGENT 20;
F5 D2 EMERGENCY 30; F4 D1 RED_SCORE never; F4 D2 RED_SCORE 40; M1 D8 URGENT 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.utils import timezone

from medai_site.patients.models import Patient
from remote_care.devices.services import device_register
from remote_care.models import Alert, Monitoring
from tests.platform.factories import CareTeamMembershipFactory, patient_for
from tests.remote_care.factories import AlertFactory, ObservationFactory, news2_summary

D1, D2, D8 = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 9)


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=timezone.get_current_timezone())


@dataclass
class Population:
    patients: dict[str, Patient]


SETS: tuple[tuple[str, date, int, int, bool, bool], ...] = (
    # (patient, day, hour, total, any single 3, partial)
    ("F1", D1, 12, 0, False, False),
    ("F2", D1, 12, 1, False, False),
    ("F3", D1, 12, 2, False, False),
    ("F4", D1, 12, 3, True, False),
    ("F5", D1, 12, 5, False, False),
    ("F6", D1, 12, 7, True, False),
    ("M1", D1, 12, 2, False, False),
    ("M2", D1, 12, 4, False, False),
    ("F1", D2, 12, 1, False, False),
    ("F1", D2, 14, 2, False, False),
    ("F2", D2, 12, 1, False, False),
    ("F3", D2, 12, 3, False, False),
    ("F4", D2, 12, 4, True, False),
    ("F5", D2, 12, 8, False, False),
    ("F1", D8, 12, 0, False, False),
    ("F2", D8, 12, 0, False, False),
    ("F3", D8, 12, 0, False, False),
    ("F4", D8, 12, 0, False, False),
    ("F5", D8, 12, 0, False, False),
    ("M1", D8, 12, 6, False, True),
)
ALERTS: tuple[tuple[str, date, str, int | None], ...] = (
    ("F6", D1, Alert.Level.EMERGENCY, 10),
    ("F5", D1, Alert.Level.URGENT, 20),
    ("F5", D2, Alert.Level.EMERGENCY, 30),
    ("F4", D1, Alert.Level.RED_SCORE, None),
    ("F4", D2, Alert.Level.RED_SCORE, 40),
    ("M1", D8, Alert.Level.URGENT, 5),
)


def build_population(users: Any) -> Population:
    """The table above, for users.clinician_a (F*) and users.clinician_b (M*, member of F1)."""
    born = {"F5": date(1946, 3, 3), "M1": date(1990, 1, 1), "M2": date(1990, 1, 1)}
    patients: dict[str, Patient] = {}
    devices = {}
    for name in ("F1", "F2", "F3", "F4", "F5", "F6", "M1", "M2"):
        clinician = users.clinician_a if name.startswith("F") else users.clinician_b
        patient = patient_for(
            clinician,
            mrn=f"POP-{name}",
            given_name=f"Given{name}",
            family_name=f"Family{name}",
            sex=Patient.Sex.FEMALE if name.startswith("F") else Patient.Sex.MALE,
            birth_date=born.get(name, date(1950, 6, 15)),
        )
        patients[name] = patient
        devices[name] = device_register(
            patient=patient, label="kit", registered_by=clinician
        ).device
    Monitoring.objects.filter(patient=patients["F6"]).update(spo2_scale=2)
    CareTeamMembershipFactory(patient=patients["F1"], user=users.clinician_b)
    observations = {}
    for name, day, hour, total, three, partial in SETS:
        observations[name, day, hour] = ObservationFactory(
            device=devices[name],
            taken_at=at(day, hour),
            news2_total=total,
            news2_partial=partial,
            news2=news2_summary(total, any_single_three=three, partial=partial),
        )
    for name, day, level, minutes in ALERTS:
        AlertFactory(
            observation=observations[name, day, 12],
            level=level,
            status=Alert.Status.OPEN if minutes is None else Alert.Status.ACKNOWLEDGED,
            raised_at=at(day),
            acknowledged_by=None if minutes is None else users.clinician_a,
            acknowledged_at=None if minutes is None else at(day) + timedelta(minutes=minutes),
        )
    return Population(patients=patients)
