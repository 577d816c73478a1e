"""Population roll-ups: per patient-day and per day x cohort keys, recomputed from the raw
observation sets (an upsert per patient-day, then the day's cells rebuilt from the
patient-days), so every write here is idempotent and a rerun changes nothing."""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Case, Count, IntegerField, Max, Q, QuerySet, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from medai_site.patients.models import CareTeamMembership, Patient
from remote_care.analytics.filters import AGE_BANDS, RISK_BANDS
from remote_care.models import (
    Monitoring,
    Observation,
    PopulationDayCell,
    PopulationPatientDay,
    PopulationRollupState,
)
from remote_care.physiology.news2 import ClinicalRisk

#: The cohort-key columns of both roll-up tables.
KEY_COLUMNS = ("sex", "age_band", "spo2_scale", "team_set")

#: Bits of PopulationPatientDay.mask_*: 0-20 a set scored that NEWS2 total; then these.
MASK_RED = 1 << 21
MASK_PARTIAL = 1 << 22
MASK_COMPLETE = 1 << 23

#: Observations below the watermark that the catch-up job reads again: ids are handed out
#: before commit, so a slow transaction can commit a lower id after a higher one.
CATCH_UP_OVERLAP = 5_000

#: Patient-days refreshed per transaction by the catch-up job and the rebuild.
REFRESH_BATCH = 2_000

_FLAVOURS: tuple[tuple[bool | None, tuple[str, ...]], ...] = (
    (None, ("c", "p")),
    (False, ("c",)),
    (True, ("p",)),
)


def _years_before(day: date, years: int) -> date:
    """``day`` minus whole years as the database computes it for the age bands
    (filters._YearsBefore): 29 February -> 28th on PostgreSQL, 1 March on SQLite."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a common year
        if connection.vendor == "postgresql":
            return day.replace(year=day.year - years, day=28)
        return date(day.year - years, 3, 1)


def age_band_on(birth_date: date, day: date) -> str:
    """The AGE_BANDS label of a patient born on ``birth_date`` on ``day`` (as the raw query's
    CASE: the first band whose upper age the patient has not passed)."""
    for name, _low, high in AGE_BANDS:
        if high is not None and birth_date > _years_before(day, high + 1):
            return name
    return AGE_BANDS[-1][0]


def _team_sets(patient_ids: Iterable[int]) -> dict[int, str]:
    members: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    rows = CareTeamMembership.objects.filter(patient_id__in=list(patient_ids)).values_list(
        "patient_id", "user_id", "role"
    )
    for pid, uid, role in rows:
        members[pid].append((uid, role == CareTeamMembership.Role.RESPONSIBLE))
    return {
        pid: ",".join(f"{uid}{'r' if resp else ''}" for uid, resp in sorted(m))
        for pid, m in members.items()
    }


def _patient_keys(patient_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Each patient's sex, birth date, SpO2 scale and care-team set, now."""
    scales = dict(
        Monitoring.objects.filter(patient_id__in=patient_ids).values_list(
            "patient_id", "spo2_scale"
        )
    )
    teams = _team_sets(patient_ids)
    return {
        p.pk: {
            "sex": p.sex,
            "birth_date": p.birth_date,
            "spo2_scale": scales.get(p.pk),
            "team_set": teams.get(p.pk, ""),
        }
        for p in Patient.objects.filter(pk__in=patient_ids).only("pk", "sex", "birth_date")
    }


def _bounds(days: list[date]) -> tuple[datetime, datetime]:
    tz = timezone.get_current_timezone()
    return (
        timezone.make_aware(datetime.combine(min(days), time.min), tz),
        timezone.make_aware(datetime.combine(max(days) + timedelta(days=1), time.min), tz),
    )


def _local_day(value: date | datetime) -> date:
    if isinstance(value, datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value


#: Low-medium sets (news2.risk_for): total 3-4 with one parameter scoring 3.
_RED = Q(news2_total__gte=3, news2_total__lt=5, news2__any_single_three=True)


def _raw_patient_days(patient_ids: list[int], days: list[date]) -> dict[tuple[int, date], dict]:
    """{(patient, day): {"sets": n, "hist": {...}}} from the raw observation sets: one GROUP
    BY (patient, day, total, partial, red score) query."""
    start, end = _bounds(days)
    wanted = set(days)
    rows = (
        Observation.objects.order_by()
        .filter(patient_id__in=patient_ids, taken_at__gte=start, taken_at__lt=end)
        .annotate(
            day=TruncDate("taken_at"),
            red=Case(When(_RED, then=Value(1)), default=Value(0), output_field=IntegerField()),
        )
        .values_list("patient_id", "day", "news2_total", "news2_partial", "red")
        .annotate(n=Count("*"))
    )
    out: dict[tuple[int, date], dict] = {}
    for pid, day, total, partial, red, n in rows:
        day = _local_day(day)
        if day not in wanted:
            continue
        entry = out.setdefault((pid, day), {"sets": 0, "hist": {}})
        entry["sets"] += n
        flavour = entry["hist"].setdefault("p" if partial else "c", {"t": {}, "red": 0, "u": 0})
        if total is None:
            flavour["u"] += n
        else:
            flavour["t"][str(total)] = flavour["t"].get(str(total), 0) + n
            if red:
                flavour["red"] += n
    return out


def _mask(flavours: Iterable[dict]) -> int:
    mask = 0
    for f in flavours:
        for total in f["t"]:
            mask |= 1 << int(total)
        if f["red"]:
            mask |= MASK_RED
    return mask


def _lock_cells(touched: dict[date, set[tuple]]) -> None:
    """Serialise the rebuilds of the same (day, cohort key) cells (PostgreSQL; SQLite has one
    writer anyway). Taken after this transaction wrote its patient-days: a concurrent one
    that wrote others of the same key rebuilds after this commits, and reads both (READ
    COMMITTED). Ingest of patients with other keys, or on other days, does not wait.
    Always in the same order, so two refreshes cannot deadlock."""
    if connection.vendor != "postgresql":
        return
    keys = sorted(
        zlib.crc32(f"population-rollup:{day.isoformat()}:{key!r}".encode())
        for day, day_keys in touched.items()
        for key in day_keys
    )
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _day_keys(day: date) -> set[tuple]:
    """Every cohort key of a day, in its patient-days or its cells."""
    keys = set(PopulationPatientDay.objects.filter(day=day).values_list(*KEY_COLUMNS).distinct())
    return keys | set(
        PopulationDayCell.objects.filter(day=day).values_list(*KEY_COLUMNS).distinct()
    )


@transaction.atomic
def analytics_rollup_patients_refresh(*, patient_ids: Iterable[int]) -> int:
    """Recompute every rolled-up day of ``patient_ids`` after their cohort keys changed (sex,
    birth date, SpO2 scale, care teams). Idempotent. Returns the patient-days written."""
    pids = sorted(set(patient_ids))
    days = PopulationPatientDay.objects.filter(patient_id__in=pids).values_list("day", flat=True)
    return analytics_rollup_refresh(patient_ids=pids, days=set(days))


def analytics_rollup_refresh(*, patient_ids: Iterable[int], days: Iterable[date]) -> int:
    """Recompute the roll-ups of every (patient, local day) of ``patient_ids`` x ``days``
    from the raw observation sets (upsert; rows of days left without sets are deleted),
    then rebuild those days' cohort cells. Idempotent. Returns the patient-days written."""
    pids, day_list = sorted(set(patient_ids)), sorted(set(days))
    if not pids or not day_list:
        return 0
    written, touched = _patient_days_write(pids, day_list)
    _lock_cells(touched)
    for day in day_list:
        _day_cells_rebuild(day, keys=touched.get(day, set()))
    return written


_UPDATED = (
    "sex",
    "age_band",
    "spo2_scale",
    "team_set",
    "sets",
    "hist",
    "mask_any",
    "mask_complete",
    "refreshed_at",
)


def _patient_days_write(pids: list[int], days: list[date]) -> tuple[int, dict[date, set[tuple]]]:
    """Upsert the PopulationPatientDay rows of ``pids`` x ``days`` from the raw sets and
    delete those that no longer have any; returns the rows written and, per day, the cohort
    keys (KEY_COLUMNS values) whose cells the caller must rebuild (old and new keys)."""
    raw = _raw_patient_days(pids, days)
    keys = _patient_keys(pids)
    now = timezone.now()
    rows = []
    for (pid, day), entry in raw.items():
        k = keys[pid]
        hist = entry["hist"]
        flags = (MASK_PARTIAL if "p" in hist else 0) | (MASK_COMPLETE if "c" in hist else 0)
        rows.append(
            PopulationPatientDay(
                patient_id=pid,
                day=day,
                sex=k["sex"],
                age_band=age_band_on(k["birth_date"], day),
                spo2_scale=k["spo2_scale"],
                team_set=k["team_set"],
                sets=entry["sets"],
                hist=hist,
                mask_any=_mask(hist.values()) | flags,
                mask_complete=_mask([hist["c"]] if "c" in hist else []),
                refreshed_at=now,
            )
        )
    existing = PopulationPatientDay.objects.filter(patient_id__in=pids, day__in=days)
    touched: dict[date, set[tuple]] = defaultdict(set)
    gone = []
    for pk, pid, day, *key in existing.values_list("pk", "patient_id", "day", *KEY_COLUMNS):
        touched[day].add(tuple(key))
        if (pid, day) not in raw:
            gone.append(pk)
    for row in rows:
        touched[row.day].add(tuple(getattr(row, c) for c in KEY_COLUMNS))
    if gone:
        PopulationPatientDay.objects.filter(pk__in=gone).delete()
    PopulationPatientDay.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["patient", "day"],
        update_fields=list(_UPDATED),
        batch_size=1000,
    )
    return len(rows), touched


def _flavour_stats(hist: dict, parts: tuple[str, ...]) -> tuple[int, dict[int, int], int]:
    """(sets, scored sets per total, red-score sets) of the flavours ``parts`` of one
    patient-day's histogram."""
    totals: dict[int, int] = defaultdict(int)
    sets = red = 0
    for part in parts:
        f = hist.get(part)
        if not f:
            continue
        sets += f["u"]
        red += f["red"]
        for total, n in f["t"].items():
            totals[int(total)] += n
            sets += n
    return sets, totals, red


def _bands(totals: dict[int, int], red: int) -> list[int]:
    """Scored sets per RISK_BANDS band as published (news2.risk_for)."""
    scored = sum(totals.values())
    high = sum(n for t, n in totals.items() if t >= 7)
    medium = sum(n for t, n in totals.items() if 5 <= t < 7)
    by_band = {
        ClinicalRisk.LOW: scored - high - medium - red,
        ClinicalRisk.LOW_MEDIUM: red,
        ClinicalRisk.MEDIUM: medium,
        ClinicalRisk.HIGH: high,
    }
    return [by_band[b] for b in RISK_BANDS]


def _with_keys(qs: QuerySet, keys: set[tuple] | None) -> QuerySet:
    """``qs`` narrowed to the rows of the cohort keys ``keys`` (None: every key)."""
    if keys is None:
        return qs
    match = Q(pk__in=[])
    for key in keys:
        match |= Q(**dict(zip(KEY_COLUMNS, key, strict=True)))
    return qs.filter(match)


def _day_cells_rebuild(day: date, keys: set[tuple] | None = None) -> None:
    """Replace one day's PopulationDayCell rows of the cohort keys ``keys`` (None: all) by
    the sums of its patient-days with those keys."""
    if keys is not None and not keys:
        return
    cells: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    kind = PopulationDayCell.Kind
    rows = _with_keys(PopulationPatientDay.objects.filter(day=day), keys).values_list(
        *KEY_COLUMNS, "hist"
    )
    for sex, age_band, scale, team_set, hist in rows.iterator(chunk_size=5000):
        key = (sex, age_band, scale, team_set)
        for partial, parts in _FLAVOURS:
            sets, totals, red = _flavour_stats(hist, parts)
            if not sets:
                continue
            scored = sum(totals.values())
            high = sum(n for t, n in totals.items() if t >= 7)
            elevated = sum(n for t, n in totals.items() if t >= 5)
            c = cells[(*key, partial, kind.ALL, 0)]
            c[0] += sets
            c[1] += 1
            c[2] += scored
            c[3] += sum(t * n for t, n in totals.items())
            c[4] += high
            c[5] += elevated
            for total, n in totals.items():
                c = cells[(*key, partial, kind.TOTAL, total)]
                c[0] += n
                c[1] += 1
            for index, n in enumerate(_bands(totals, red)):
                if n:
                    c = cells[(*key, partial, kind.BAND, index)]
                    c[0] += n
                    c[1] += 1
            for name, n in ((kind.HIGH, high), (kind.REST, scored - high)):
                if n:
                    c = cells[(*key, partial, name, 0)]
                    c[0] += n
                    c[1] += 1
    _with_keys(PopulationDayCell.objects.filter(day=day), keys).delete()
    PopulationDayCell.objects.bulk_create(
        [
            PopulationDayCell(
                day=day,
                sex=sex,
                age_band=age_band,
                spo2_scale=scale,
                team_set=team_set,
                partial=partial,
                kind=name,
                value=value,
                sets=v[0],
                patients=v[1],
                scored=v[2],
                news2_sum=v[3],
                high=v[4],
                elevated=v[5],
            )
            for (sex, age_band, scale, team_set, partial, name, value), v in cells.items()
        ],
        batch_size=2000,
    )


def _refresh_pairs(pairs: Iterable[tuple[int, date]], *, whole_days: bool = False) -> int:
    """Refresh the given (patient, day) pairs: one transaction per day, its patients in
    batches of REFRESH_BATCH, then the cells of the cohort keys they touched (of every key
    of the day with ``whole_days``, for the back-fill)."""
    by_day: dict[date, set[int]] = defaultdict(set)
    for pid, day in pairs:
        by_day[day].add(pid)
    written = 0
    for day in sorted(by_day):
        pids = sorted(by_day[day])
        with transaction.atomic():
            touched: set[tuple] = set()
            for i in range(0, len(pids), REFRESH_BATCH):
                n, keys = _patient_days_write(pids[i : i + REFRESH_BATCH], [day])
                written += n
                touched |= keys.get(day, set())
            if whole_days:
                _lock_cells({day: _day_keys(day)})
                _day_cells_rebuild(day)
            else:
                _lock_cells({day: touched})
                _day_cells_rebuild(day, keys=touched)
    return written


def analytics_rollup_catch_up() -> int:
    """Refresh the patient-days of every observation set added since the last run (and the
    CATCH_UP_OVERLAP before it), then move the watermark; idempotent (the scheduled job).
    Returns the patient-days written."""
    state, _ = PopulationRollupState.objects.get_or_create(
        name="observations", defaults={"updated_at": timezone.now()}
    )
    top = Observation.objects.aggregate(top=Max("id"))["top"] or 0
    if top <= state.last_observation_id:
        return 0
    pairs = (
        Observation.objects.order_by()
        .filter(id__gt=max(0, state.last_observation_id - CATCH_UP_OVERLAP), id__lte=top)
        .annotate(day=TruncDate("taken_at"))
        .values_list("patient_id", "day")
        .distinct()
    )
    written = _refresh_pairs((pid, _local_day(day)) for pid, day in pairs)
    PopulationRollupState.objects.filter(pk=state.pk, last_observation_id__lt=top).update(
        last_observation_id=top, updated_at=timezone.now()
    )
    return written


def analytics_rollup_rebuild() -> int:
    """Recompute every roll-up from the raw observation sets (back-fill, or after care teams,
    SpO2 scales or demographics changed) and set the catch-up watermark; idempotent (a day's
    figures are incomplete while its day is being rebuilt). Returns the patient-days written."""
    top = Observation.objects.aggregate(top=Max("id"))["top"] or 0
    pairs = (
        Observation.objects.order_by()
        .annotate(day=TruncDate("taken_at"))
        .values_list("patient_id", "day")
        .distinct()
    )
    kept = {(pid, _local_day(day)) for pid, day in pairs}
    days = {d for _, d in kept}
    PopulationPatientDay.objects.exclude(day__in=days).delete()
    PopulationDayCell.objects.exclude(day__in=days).delete()
    # Patient-days rolled up before whose sets are gone: refreshing them deletes them.
    old = PopulationPatientDay.objects.values_list("patient_id", "day")
    written = _refresh_pairs(kept | set(old), whole_days=True)
    PopulationRollupState.objects.update_or_create(
        name="observations",
        defaults={"last_observation_id": top, "updated_at": timezone.now()},
    )
    return written
