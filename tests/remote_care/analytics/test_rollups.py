"""The roll-up path equals the raw one: on random small populations and random filters,
every aggregate (periods, summary, histogram, bands, cohorts), every unsafe cell and
refusal, and every figure and suppressed cell of the page and its exports computed from the
roll-up tables is what the raw queries (the reference, ``dashboard.RAW``) give. Plus the
roll-up service's own contract: idempotent, incremental, and deletions rolled up."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from medai_site.patients.models import CareTeamMembership, Patient
from remote_care.analytics import rollups
from remote_care.analytics.dashboard import (
    EXPORT_TABLES,
    RAW,
    ROLLUPS,
    population_dashboard,
    population_table,
)
from remote_care.analytics.filters import AGE_BANDS, Dimension, PopulationFilter
from remote_care.analytics.services import (
    age_band_on,
    analytics_rollup_catch_up,
    analytics_rollup_rebuild,
    analytics_rollup_refresh,
)
from remote_care.models import (
    Alert,
    Device,
    Monitoring,
    Observation,
    PopulationAckDelay,
    PopulationDayCell,
    PopulationPatientDay,
    PopulationPatientWeek,
)
from remote_care.monitoring.services import alert_transition
from tests.platform.factories import UserFactory
from tests.remote_care.factories import news2_summary

pytestmark = pytest.mark.django_db

START = date(2026, 2, 23)  # a Monday; 12 days, so weeks are clipped by the ranges
DAYS = 12


def _at(day: date, hour: int, minute: int) -> datetime:
    return datetime(
        day.year, day.month, day.day, hour, minute, tzinfo=timezone.get_current_timezone()
    )


def _population(rng: random.Random, clinicians: list[Any]) -> list[Patient]:
    """12-30 patients with random sex, ages near band edges, SpO2 scales, care teams (some
    with two responsible clinicians, some with none) and 0-4 sets a day, partial or not,
    red scores, unscored sets and sets at local midnight; alerts on some of them."""
    patients = []
    for i in range(rng.randint(12, 30)):
        # Ages around the band edges during the range (a birthday inside it moves the band).
        edge = rng.choice([18, 40, 65, 80, 50])
        born = START - timedelta(days=365 * edge + rng.randint(-8, 8))
        born = born.replace(day=min(born.day, 28))
        patient = Patient.objects.create(
            mrn=f"RND-{i}",
            given_name="Given",
            family_name=f"Family{i}",
            birth_date=born,
            sex=rng.choice(list(Patient.Sex.values)),
        )
        patients.append(patient)
        if rng.random() < 0.9:
            Monitoring.objects.create(patient=patient, spo2_scale=rng.choice([1, 1, 2]))
        team = rng.sample(clinicians, min(len(clinicians), rng.choice([0, 1, 1, 1, 2, 3])))
        for n, user in enumerate(team):
            role = CareTeamMembership.Role.RESPONSIBLE
            if n and rng.random() < 0.6:
                role = CareTeamMembership.Role.MEMBER
            CareTeamMembership.objects.create(patient=patient, user=user, role=role)
    observations = []
    for patient in patients:
        device = Device.objects.create(
            patient=patient,
            label="kit",
            token_prefix=f"t{patient.pk}",
            token_hash="0" * 64,
            registered_by=clinicians[0],
        )
        for d in range(DAYS):
            times = [(0, 0), (23, 59), *((h, 30) for h in rng.sample(range(1, 23), 3))]
            for hour, minute in rng.sample(times, rng.choice([0, 0, 1, 1, 2, 4])):
                total = None if rng.random() < 0.05 else min(20, int(13 * rng.random() ** 2))
                partial = rng.random() < 0.15
                three = total is not None and rng.random() < 0.4
                observations.append(
                    Observation(
                        patient=patient,
                        device=device,
                        taken_at=_at(START + timedelta(days=d), hour, minute),
                        news2_total=total,
                        news2_partial=partial,
                        news2=news2_summary(total, any_single_three=three, partial=partial),
                    )
                )
    Observation.objects.bulk_create(observations)
    alerts = []
    for obs in Observation.objects.filter(news2_total__gte=3):
        if rng.random() < 0.5:
            acked = rng.random() < 0.7
            alerts.append(
                Alert(
                    patient_id=obs.patient_id,
                    observation=obs,
                    level=rng.choice(list(Alert.Level.values)),
                    status=Alert.Status.ACKNOWLEDGED if acked else Alert.Status.OPEN,
                    news2_total=obs.news2_total,
                    reason="test",
                    raised_at=obs.taken_at,
                    # Microsecond delays, some repeated: the percentiles interpolate exactly.
                    acknowledged_at=obs.taken_at
                    + timedelta(
                        minutes=rng.randint(1, 90),
                        microseconds=rng.choice([0, rng.randint(0, 59_999_999)]),
                    )
                    if acked
                    else None,
                )
            )
    Alert.objects.bulk_create(alerts)
    return patients


def _random_filter(rng: random.Random, clinicians: list[Any]) -> PopulationFilter:
    start = START + timedelta(days=rng.randint(-1, DAYS - 1))
    end = start + timedelta(days=rng.randint(0, DAYS))
    pick = rng.random
    return PopulationFilter(
        start=start,
        end=end,
        period=rng.choice(["day", "week"]),
        by=rng.choice(list(Dimension)),
        sex=rng.choice(list(Patient.Sex.values)) if pick() < 0.3 else "",
        age_band=rng.choice([b[0] for b in AGE_BANDS]) if pick() < 0.25 else "",
        team=rng.choice(clinicians).pk if pick() < 0.25 else None,
        spo2_scale=rng.choice([1, 2]) if pick() < 0.2 else None,
        complete_only=pick() < 0.35,
    )


def _plain(value: Any) -> Any:
    """Dataclasses as dicts and floats rounded to 9 digits (percentile_cont and the
    histogram's interpolation may differ in the last bit)."""
    if hasattr(value, "__dataclass_fields__"):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return value if type(value).__name__ == "_Everything" else set(value)
    if isinstance(value, float):
        return round(value, 9)
    return value


def _page(dashboard: Any) -> dict[str, Any]:
    """Everything the page and its exports show: the suppressed tables, the summary's cells
    and the series the charts draw."""
    return _plain(
        {
            "tables": {k: asdict(t) for k, t in dashboard.tables().items()},
            "summary": dashboard.summary_cells,
            "refused": dashboard.refused,
            "chart_periods": dashboard.chart_periods(),
            "chart_alert_periods": dashboard.chart_alert_periods(),
            "chart_histogram": dashboard.chart_histogram(),
            "chart_cohorts": dashboard.chart_cohorts(),
            "chart_bands": dashboard.chart_bands(),
        }
    )


def _assert_same(user: Any, f: PopulationFilter) -> None:
    raw, rolled = (population_dashboard(user=user, f=f, source=s) for s in (RAW, ROLLUPS))
    context = f"filter {f.to_dict()} for {user.username}"
    for name in ("summary", "periods", "histogram", "bands", "cohorts", "acknowledge", "refused"):
        assert _plain(getattr(rolled, name)) == _plain(getattr(raw, name)), f"{name}, {context}"
    for table, unsafe in raw.unsafe.items():
        assert _plain(rolled.unsafe[table]) == _plain(unsafe), f"unsafe {table}, {context}"
    assert _page(rolled) == _page(raw), context
    for table in EXPORT_TABLES:
        exported = population_table(user=user, f=f, table=table, source=ROLLUPS)
        assert exported == population_table(user=user, f=f, table=table, source=RAW), table


@pytest.mark.parametrize("seed", range(6))
def test_rollups_equal_the_raw_queries_on_random_data_and_filters(users, seed):
    rng = random.Random(seed)
    clinicians = [users.clinician_a, users.clinician_b, UserFactory(roles=["clinician"])]
    _population(rng, clinicians)
    analytics_rollup_rebuild()
    checked_small = 0
    for _ in range(25):
        f = _random_filter(rng, clinicians)
        user = users.researcher if rng.random() < 0.7 else rng.choice(clinicians)
        _assert_same(user, f)
        raw = population_dashboard(user=user, f=f, source=RAW)
        checked_small += any(0 < p.patients < 5 for p in raw.periods) or raw.refused
    # The random filters reach suppressed cells and refusals, not only safe tables.
    assert checked_small >= 3


def test_unfiltered_page_over_the_whole_range_matches(users):
    rng = random.Random(99)
    clinicians = [users.clinician_a, users.clinician_b]
    _population(rng, clinicians)
    analytics_rollup_rebuild()
    for by in Dimension:
        for period in ("day", "week"):
            f = PopulationFilter(
                start=START, end=START + timedelta(days=DAYS), by=by, period=period
            )
            _assert_same(users.researcher, f)
            _assert_same(users.clinician_a, f)


def test_refresh_is_idempotent_and_incremental(users):
    rng = random.Random(7)
    clinicians = [users.clinician_a, users.clinician_b]
    patients = _population(rng, clinicians)
    analytics_rollup_rebuild()
    before = set(PopulationDayCell.objects.values_list(*_CELL_FIELDS))
    days = [START + timedelta(days=d) for d in range(DAYS)]
    analytics_rollup_refresh(patient_ids=[p.pk for p in patients], days=days)
    assert set(PopulationDayCell.objects.values_list(*_CELL_FIELDS)) == before
    # New sets for one patient: refreshing only that patient-day brings the roll-ups level
    # with the raw rows again.
    patient, day = patients[0], days[3]
    device = Device.objects.get(patient=patient)
    for total in (9, 10, 11, 12, 13):
        Observation.objects.create(
            patient=patient, device=device, taken_at=_at(day, 9, total), news2_total=total
        )
    f = PopulationFilter(start=days[0], end=days[-1])
    stale = rollups.population_periods(user=users.researcher, f=f)
    analytics_rollup_refresh(patient_ids=[patient.pk], days=[day])
    fresh = rollups.population_periods(user=users.researcher, f=f)
    assert _plain(fresh) != _plain(stale)
    _assert_same(users.researcher, f)
    # A care team and a scale change: refreshing the patient's days moves them from their
    # old cohort cells to the new ones.
    CareTeamMembership.objects.filter(patient=patient).delete()
    CareTeamMembership.objects.create(
        patient=patient, user=users.clinician_b, role=CareTeamMembership.Role.RESPONSIBLE
    )
    Monitoring.objects.update_or_create(patient=patient, defaults={"spo2_scale": 2})
    analytics_rollup_refresh(patient_ids=[patient.pk], days=days)
    for by in (Dimension.TEAM, Dimension.SCALE):
        _assert_same(users.researcher, PopulationFilter(start=days[0], end=days[-1], by=by))


def test_deleted_sets_leave_the_rollups(users):
    rng = random.Random(3)
    patients = _population(rng, [users.clinician_a])
    analytics_rollup_rebuild()
    patient = next(p for p in patients if p.observations.exists())
    day = timezone.localtime(patient.observations.first().taken_at).date()
    Alert.objects.filter(patient=patient).delete()
    Observation.objects.filter(patient=patient).delete()
    analytics_rollup_refresh(patient_ids=[patient.pk], days=[day])
    assert not PopulationPatientDay.objects.filter(patient=patient, day=day).exists()
    call_command("analytics_rollup_rebuild", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert not PopulationPatientDay.objects.filter(patient=patient).exists()
    _assert_same(users.researcher, PopulationFilter(start=START, end=START + timedelta(DAYS)))


def test_catch_up_rolls_up_new_sets_once(users):
    rng = random.Random(11)
    _population(rng, [users.clinician_a, users.clinician_b])
    assert analytics_rollup_catch_up() > 0
    f = PopulationFilter(start=START, end=START + timedelta(days=DAYS), by=Dimension.TEAM)
    _assert_same(users.researcher, f)
    assert analytics_rollup_catch_up() == 0


def test_age_band_on_matches_the_databases_birthday_rule():
    assert age_band_on(date(2008, 3, 1), date(2026, 2, 28)) == "0-17"
    assert age_band_on(date(2008, 2, 28), date(2026, 2, 28)) == "18-39"
    assert age_band_on(date(1946, 3, 3), date(2026, 3, 2)) == "65-79"
    assert age_band_on(date(1946, 3, 3), date(2026, 3, 3)) == "80+"


_CELL_FIELDS = (
    "day",
    "sex",
    "age_band",
    "spo2_scale",
    "team_set",
    "partial",
    "kind",
    "value",
    "sets",
    "patients",
    "scored",
    "news2_sum",
    "high",
    "elevated",
)


def test_a_change_of_cohort_keys_refreshes_the_patients_rollups(
    users, django_capture_on_commit_callbacks
):
    # No explicit refresh here: a care team or SpO2 scale change must reach the roll-ups on
    # its own, or the page keeps counting the patient in a team they have left.
    rng = random.Random(5)
    patients = _population(rng, [users.clinician_a, users.clinician_b])
    analytics_rollup_rebuild()
    patient = next(p for p in patients if PopulationPatientDay.objects.filter(patient=p).exists())
    with django_capture_on_commit_callbacks(execute=True):
        CareTeamMembership.objects.filter(patient=patient).delete()
        CareTeamMembership.objects.create(
            patient=patient, user=users.clinician_b, role=CareTeamMembership.Role.RESPONSIBLE
        )
        Monitoring.objects.update_or_create(patient=patient, defaults={"spo2_scale": 2})
    rows = PopulationPatientDay.objects.filter(patient=patient)
    assert set(rows.values_list("team_set", flat=True)) == {f"{users.clinician_b.pk}r"}
    assert set(rows.values_list("spo2_scale", flat=True)) == {2}
    for by in (Dimension.TEAM, Dimension.SCALE):
        _assert_same(
            users.researcher, PopulationFilter(start=START, end=START + timedelta(DAYS), by=by)
        )


def test_only_a_change_of_cohort_keys_recomputes_a_patients_rollups(
    users, django_capture_on_commit_callbacks, monkeypatch
):
    # Each recompute rereads every rolled-up day of the patient: a name edit or an alert-state
    # step (Monitoring is saved on each) must not pay for one.
    rng = random.Random(7)
    patients = _population(rng, [users.clinician_a, users.clinician_b])
    analytics_rollup_rebuild()
    patient = next(p for p in patients if PopulationPatientDay.objects.filter(patient=p).exists())
    monitoring, _ = Monitoring.objects.get_or_create(patient=patient)
    membership = CareTeamMembership.objects.filter(patient=patient).first()
    calls: list[list[int]] = []
    monkeypatch.setattr(
        "remote_care.analytics.receivers.analytics_rollup_patients_refresh",
        lambda *, patient_ids: calls.append(list(patient_ids)),
    )

    with django_capture_on_commit_callbacks(execute=True):
        patient.given_name = "Renamed"
        patient.save()
        Patient.objects.get(pk=patient.pk).save(update_fields=["family_name"])
        monitoring.alert_state = {"stepped": True}
        monitoring.save(update_fields=["alert_state"])
        monitoring.save()  # every field written, the scale unchanged
        if membership is not None:
            membership.save()
    assert calls == []

    new_sex = next(s for s in Patient.Sex.values if s != patient.sex)
    with django_capture_on_commit_callbacks(execute=True):
        patient.sex = new_sex
        patient.save(update_fields=["sex"])
    assert calls == [[patient.pk]]

    calls.clear()
    with django_capture_on_commit_callbacks(execute=True):
        patient.birth_date = patient.birth_date - timedelta(days=400)
        patient.save()
        monitoring.spo2_scale = 2 if monitoring.spo2_scale != 2 else 1
        monitoring.save(update_fields=["spo2_scale", "alert_state"])
    assert calls == [[patient.pk], [patient.pk]]


def test_a_cohort_key_edit_reaches_the_rollups(users, django_capture_on_commit_callbacks):
    rng = random.Random(8)
    patients = _population(rng, [users.clinician_a, users.clinician_b])
    analytics_rollup_rebuild()
    patient = next(p for p in patients if PopulationPatientDay.objects.filter(patient=p).exists())
    new_sex = next(s for s in Patient.Sex.values if s != patient.sex)
    with django_capture_on_commit_callbacks(execute=True):
        patient.sex = new_sex
        patient.save()
    rows = PopulationPatientDay.objects.filter(patient=patient)
    assert set(rows.values_list("sex", flat=True)) == {new_sex}
    _assert_same(users.researcher, PopulationFilter(start=START, end=START + timedelta(DAYS)))


_DAY_FIELDS = (
    "patient_id",
    "day",
    "sex",
    "age_band",
    "spo2_scale",
    "team_set",
    "sets",
    "hist",
    "mask_any",
    "mask_complete",
)
_WEEK_FIELDS = (
    "patient_id",
    "week",
    "sex",
    "age_band",
    "spo2_scale",
    "team_set",
    "days",
    "mask_any",
    "mask_complete",
)


_DELAY_FIELDS = (
    "day",
    "sex",
    "age_band",
    "spo2_scale",
    "team_set",
    "level",
    "delay_us",
    "alerts",
)


def _tables() -> tuple[list, list, list, list]:
    """Every roll-up row (patient-days, cells, weeks, acknowledge delays), ids left out,
    sorted."""
    days = sorted(
        (*r[:7], json.dumps(r[7], sort_keys=True), *r[8:])
        for r in PopulationPatientDay.objects.values_list(*_DAY_FIELDS)
    )
    cells = sorted(PopulationDayCell.objects.values_list(*_CELL_FIELDS), key=repr)
    weeks = sorted(PopulationPatientWeek.objects.values_list(*_WEEK_FIELDS), key=repr)
    delays = sorted(PopulationAckDelay.objects.values_list(*_DELAY_FIELDS), key=repr)
    return days, cells, weeks, delays


def _weeks_from_days() -> list:
    """The week roll-ups as their definition gives them: the patient-days of each patient,
    ISO week and cohort keys, counted, masks OR-ed."""
    merged: dict[tuple, list[int]] = {}
    for pid, day, *key, mask_any, mask_complete in PopulationPatientDay.objects.values_list(
        "patient_id",
        "day",
        "sex",
        "age_band",
        "spo2_scale",
        "team_set",
        "mask_any",
        "mask_complete",
    ):
        m = merged.setdefault((pid, day - timedelta(days=day.weekday()), *key), [0, 0, 0])
        m[0] += 1
        m[1] |= mask_any
        m[2] |= mask_complete
    return sorted(((*k, *v) for k, v in merged.items()), key=repr)


@pytest.mark.parametrize("seed", range(3))
def test_set_based_rebuild_writes_what_the_orm_rebuild_writes(users, seed):
    if connection.vendor != "postgresql":
        with pytest.raises(ValueError, match="PostgreSQL"):
            analytics_rollup_rebuild(set_based=True)
        return
    rng = random.Random(100 + seed)
    patients = _population(rng, [users.clinician_a, users.clinician_b])
    # Roll-ups left over from sets since deleted, inside and outside the sets' range: both
    # rebuilds must drop them.
    analytics_rollup_rebuild(set_based=False)
    gone = next(p for p in patients if p.observations.exists())
    Alert.objects.filter(patient=gone).delete()
    Observation.objects.filter(patient=gone, taken_at__lt=_at(START + timedelta(6), 0, 0)).delete()
    stale = PopulationPatientDay.objects.first()
    PopulationPatientDay.objects.create(
        **{f: getattr(stale, f) for f in _DAY_FIELDS if f != "day"},
        day=START - timedelta(days=30),
        refreshed_at=timezone.now(),
    )
    analytics_rollup_rebuild(set_based=False)
    by_orm = _tables()
    assert by_orm[0] and by_orm[1] and by_orm[2] and by_orm[3]
    # The alert cells are among the rows both rebuilds must write alike.
    assert {c[6] for c in by_orm[1]} >= {"alert", "alerted", "acked", "unacked"}
    assert by_orm[2] == _weeks_from_days()
    analytics_rollup_rebuild(set_based=True)
    assert _tables() == by_orm
    analytics_rollup_rebuild(set_based=True)  # idempotent
    assert _tables() == by_orm


def test_week_rollups_follow_refreshes_and_deletions(users):
    rng = random.Random(21)
    patients = _population(rng, [users.clinician_a, users.clinician_b])
    analytics_rollup_rebuild()
    assert _tables()[2] == _weeks_from_days()
    patient = next(p for p in patients if p.observations.exists())
    device = Device.objects.get(patient=patient)
    day = START + timedelta(days=9)
    Observation.objects.create(
        patient=patient, device=device, taken_at=_at(day, 7, 1), news2_total=20
    )
    analytics_rollup_refresh(patient_ids=[patient.pk], days=[day])
    assert _tables()[2] == _weeks_from_days()
    assert PopulationPatientWeek.objects.filter(
        patient=patient, week=START + timedelta(days=7), mask_any__gte=1 << 20
    ).exists()
    Alert.objects.filter(patient=patient).delete()
    Observation.objects.filter(patient=patient).delete()
    analytics_rollup_refresh(
        patient_ids=[patient.pk], days=[START + timedelta(days=d) for d in range(DAYS)]
    )
    assert not PopulationPatientWeek.objects.filter(patient=patient).exists()
    assert _tables()[2] == _weeks_from_days()
    # A range that holds whole weeks reads them; its clipped ends read the patient-days.
    f = PopulationFilter(start=START + timedelta(days=1), end=START + timedelta(days=13))
    assert rollups._whole_weeks(f) == (START + timedelta(days=7), START + timedelta(days=7))
    _assert_same(users.researcher, f)


def test_alerts_are_rolled_up_and_a_deleted_one_leaves_them(
    users, django_capture_on_commit_callbacks
):
    rng = random.Random(31)
    clinicians = [users.clinician_a, users.clinician_b]
    _population(rng, clinicians)
    analytics_rollup_rebuild()
    cells = PopulationDayCell.objects.filter(kind=PopulationDayCell.Kind.ALERTED)
    alerts = Alert.objects.count()
    assert alerts and sum(cells.values_list("sets", flat=True)) == alerts
    per_level = PopulationDayCell.objects.filter(kind=PopulationDayCell.Kind.ALERT)
    assert sum(per_level.values_list("sets", flat=True)) == alerts
    whole = PopulationFilter(start=START, end=START + timedelta(DAYS), by=Dimension.TEAM)
    # Acknowledging an alert moves it to the acknowledged cells with its delay, once the
    # acknowledgement commits.
    acked = PopulationDayCell.objects.filter(kind=PopulationDayCell.Kind.ACKED)
    before = sum(acked.values_list("sets", flat=True))
    assert before == Alert.objects.filter(acknowledged_at__isnull=False).count()
    for alert in Alert.objects.filter(acknowledged_at__isnull=True)[:3]:
        with django_capture_on_commit_callbacks(execute=True):
            alert_transition(alert=alert, action="acknowledge", user=clinicians[0])
    assert sum(acked.values_list("sets", flat=True)) == before + 3
    _assert_same(users.researcher, whole)
    _assert_same(users.researcher, replace(whole, by=Dimension.ALL))
    assert population_dashboard(user=users.researcher, f=whole, source=ROLLUPS).acknowledge
    gone = Alert.objects.order_by("pk").first()
    assert gone is not None
    with django_capture_on_commit_callbacks(execute=True):
        gone.delete()
    assert sum(cells.values_list("sets", flat=True)) == alerts - 1
    _assert_same(users.researcher, whole)
    _assert_same(clinicians[0], replace(whole, by=Dimension.AGE))
