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
from django.db.models import Case, Count, IntegerField, Max, Min, Q, QuerySet, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from medai_site.patients.models import CareTeamMembership, Patient
from remote_care.analytics.filters import AGE_BANDS, ALERT_LEVELS, RISK_BANDS
from remote_care.models import (
    Alert,
    Monitoring,
    Observation,
    PopulationAckDelay,
    PopulationDayCell,
    PopulationPatientDay,
    PopulationPatientWeek,
    PopulationRollupState,
)
from remote_care.physiology.news2 import ClinicalRisk

#: The cohort-key columns of both roll-up tables.
KEY_COLUMNS = ("sex", "age_band", "spo2_scale", "team_set")

#: Bits of PopulationPatientDay.mask_*: 0-20 a set scored that NEWS2 total; then these.
MASK_RED = 1 << 21
MASK_PARTIAL = 1 << 22
MASK_COMPLETE = 1 << 23

#: Bits of PopulationPatientDay.mask_any (never mask_complete: alerts have no partial flag):
#: the patient was alerted at that level that day (ALERT_LEVELS order).
ALERT_BITS = {level: 1 << (24 + i) for i, level in enumerate(ALERT_LEVELS)}
MASK_ALERTED = sum(ALERT_BITS.values())

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
    _raw_alerts(out, patient_ids, start, end)
    return out


def _raw_alerts(
    out: dict[tuple[int, date], dict], patient_ids: list[int], start: datetime, end: datetime
) -> None:
    """Add to each patient-day of ``out`` its alerts per level (``hist["a"]``), by the local
    day they were raised. An alert is raised with its set, at the set's time
    (monitoring.services.alerts_raise), so its day always has a patient-day; the
    random-data equality tests hold the roll-ups to the raw alert queries."""
    rows = (
        Alert.objects.order_by()
        .filter(patient_id__in=patient_ids, raised_at__gte=start, raised_at__lt=end)
        .annotate(day=TruncDate("raised_at"))
        .values_list("patient_id", "day", "level")
        .annotate(n=Count("*"))
    )
    for pid, day, level, n in rows:
        entry = out.get((pid, _local_day(day)))
        if entry is not None:
            alerts = entry["hist"].setdefault("a", {})
            alerts[level] = alerts.get(level, 0) + n
    acked = (
        Alert.objects.order_by()
        .filter(
            patient_id__in=patient_ids,
            raised_at__gte=start,
            raised_at__lt=end,
            acknowledged_at__isnull=False,
        )
        .values_list("patient_id", "level", "raised_at", "acknowledged_at")
    )
    for pid, level, raised_at, acknowledged_at in acked:
        entry = out.get((pid, _local_day(raised_at)))
        if entry is not None and acknowledged_at is not None:
            delays = entry["hist"].setdefault("k", {}).setdefault(level, {})
            key = str(delay_us(raised_at, acknowledged_at))
            delays[key] = delays.get(key, 0) + 1


def delay_us(raised_at: datetime, acknowledged_at: datetime) -> int:
    """Microseconds from raising an alert to acknowledging it (exact)."""
    return (acknowledged_at - raised_at) // timedelta(microseconds=1)


def _alert_mask(hist: dict) -> int:
    mask = 0
    for level in hist.get("a", {}):
        mask |= ALERT_BITS[level]
    return mask


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
    _patient_weeks_write(pids, day_list)
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
        flags |= _alert_mask(hist)
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
                mask_any=_mask(hist[p] for p in ("c", "p") if p in hist) | flags,
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


def week_of(day: date) -> date:
    """The Monday of ``day``'s ISO week (PopulationPatientWeek.week)."""
    return day - timedelta(days=day.weekday())


def _patient_weeks_write(pids: list[int], days: Iterable[date]) -> None:
    """Rewrite the PopulationPatientWeek rows of ``pids`` in the weeks of ``days`` from
    their patient-days (masks OR-ed per patient, week and cohort keys)."""
    weeks = sorted({week_of(d) for d in days})
    if not pids or not weeks:
        return
    PopulationPatientWeek.objects.filter(patient_id__in=pids, week__in=weeks).delete()
    rows = PopulationPatientDay.objects.filter(
        patient_id__in=pids, day__gte=weeks[0], day__lt=weeks[-1] + timedelta(days=7)
    ).values_list("patient_id", "day", *KEY_COLUMNS, "mask_any", "mask_complete")
    wanted = set(weeks)
    merged: dict[tuple, list[int]] = {}
    for pid, day, *key, mask_any, mask_complete in rows.iterator(chunk_size=5000):
        week = week_of(day)
        if week not in wanted:
            continue
        m = merged.setdefault((pid, week, *key), [0, 0, 0])
        m[0] += 1
        m[1] |= mask_any
        m[2] |= mask_complete
    PopulationPatientWeek.objects.bulk_create(
        [
            PopulationPatientWeek(
                patient_id=pid,
                week=week,
                sex=sex,
                age_band=age_band,
                spo2_scale=scale,
                team_set=team_set,
                days=n,
                mask_any=mask_any,
                mask_complete=mask_complete,
            )
            for (pid, week, sex, age_band, scale, team_set), (n, mask_any, mask_complete) in (
                merged.items()
            )
        ],
        batch_size=2000,
    )


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


def _alert_cells(
    cells: dict[tuple, list[int]], delays: dict[tuple, int], key: tuple, hist: dict
) -> None:
    """Add one patient-day's alerts to its day's cells: per level (value: index in
    ALERT_LEVELS) all, acknowledged and not, any level (ALERTED), and the acknowledged ones'
    delays per level to ``delays`` ((*key, level index, delay_us) -> alerts)."""
    kind = PopulationDayCell.Kind
    acked = hist.get("k", {})
    for level, n in hist["a"].items():
        index = ALERT_LEVELS.index(level)
        done = sum(acked.get(level, {}).values())
        for name, m in ((kind.ALERT, n), (kind.ACKED, done), (kind.UNACKED, n - done)):
            if m:
                c = cells[(*key, None, name, index)]
                c[0] += m
                c[1] += 1
    c = cells[(*key, None, kind.ALERTED, 0)]
    c[0] += sum(hist["a"].values())
    c[1] += 1
    for level, by_delay in acked.items():
        for delay, m in by_delay.items():
            delays[(*key, ALERT_LEVELS.index(level), int(delay))] += m


def _day_cells_rebuild(day: date, keys: set[tuple] | None = None) -> None:
    """Replace one day's PopulationDayCell rows of the cohort keys ``keys`` (None: all) by
    the sums of its patient-days with those keys."""
    if keys is not None and not keys:
        return
    cells: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    delays: dict[tuple, int] = defaultdict(int)
    kind = PopulationDayCell.Kind
    rows = _with_keys(PopulationPatientDay.objects.filter(day=day), keys).values_list(
        *KEY_COLUMNS, "hist"
    )
    for sex, age_band, scale, team_set, hist in rows.iterator(chunk_size=5000):
        key = (sex, age_band, scale, team_set)
        if hist.get("a"):
            _alert_cells(cells, delays, key, hist)
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
    _with_keys(PopulationAckDelay.objects.filter(day=day), keys).delete()
    PopulationAckDelay.objects.bulk_create(
        [
            PopulationAckDelay(
                day=day,
                sex=sex,
                age_band=age_band,
                spo2_scale=scale,
                team_set=team_set,
                level=level,
                delay_us=delay,
                alerts=n,
            )
            for (sex, age_band, scale, team_set, level, delay), n in delays.items()
        ],
        batch_size=2000,
    )
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
                _patient_weeks_write(pids[i : i + REFRESH_BATCH], [day])
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


def analytics_rollup_rebuild(*, set_based: bool | None = None) -> int:
    """Recompute every roll-up from the raw observation sets (back-fill, or after care teams,
    SpO2 scales or demographics changed) and set the catch-up watermark; idempotent (a day's
    figures are incomplete while its day is being rebuilt). ``set_based`` (the default on
    PostgreSQL): a few INSERT ... SELECT ... GROUP BY statements per REBUILD_WEEKS weeks;
    otherwise the ORM path, patient-day batches. Returns the patient-days written."""
    if set_based is None:
        set_based = connection.vendor == "postgresql"
    if set_based and connection.vendor != "postgresql":
        raise ValueError("The set-based rebuild needs PostgreSQL.")
    top = Observation.objects.aggregate(top=Max("id"))["top"] or 0
    written = _rebuild_set_based() if set_based else _rebuild_orm()
    PopulationRollupState.objects.update_or_create(
        name="observations",
        defaults={"last_observation_id": top, "updated_at": timezone.now()},
    )
    return written


def _rebuild_orm() -> int:
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
    PopulationAckDelay.objects.exclude(day__in=days).delete()
    PopulationPatientWeek.objects.exclude(week__in={week_of(d) for d in days}).delete()
    # Patient-days rolled up before whose sets are gone: refreshing them deletes them.
    old = PopulationPatientDay.objects.values_list("patient_id", "day")
    return _refresh_pairs(kept | set(old), whole_days=True)


def _rebuild_set_based() -> int:
    span = Observation.objects.aggregate(first=Min("taken_at"), last=Max("taken_at"))
    if span["first"] is None:
        PopulationPatientDay.objects.all().delete()
        PopulationDayCell.objects.all().delete()
        PopulationAckDelay.objects.all().delete()
        PopulationPatientWeek.objects.all().delete()
        return 0
    first = week_of(_local_day(span["first"]))
    last = week_of(_local_day(span["last"])) + timedelta(days=6)
    PopulationPatientDay.objects.exclude(day__gte=first, day__lte=last).delete()
    PopulationDayCell.objects.exclude(day__gte=first, day__lte=last).delete()
    PopulationAckDelay.objects.exclude(day__gte=first, day__lte=last).delete()
    PopulationPatientWeek.objects.exclude(week__gte=first, week__lte=last).delete()
    written = 0
    chunk = first
    while chunk <= last:
        end = min(chunk + timedelta(days=7 * REBUILD_WEEKS - 1), last)
        written += _rollup_rebuild_sql(chunk, end)
        chunk = end + timedelta(days=1)
    with connection.cursor() as cursor:
        # Every row was just rewritten: without fresh statistics the page's plans guess
        # (the week table, never analysed, planned 178 rows for 240,000 at 10M and spilled
        # its aggregate to disk) until autovacuum gets to them.
        for table in (
            "populationpatientday",
            "populationdaycell",
            "populationpatientweek",
            "populationackdelay",
        ):
            cursor.execute(f"ANALYZE remote_care_{table}")
    return written


# --- Set-based rebuild (PostgreSQL) ---------------------------------------------------------

#: Days per transaction of the set-based rebuild: whole ISO weeks, so each week's
#: PopulationPatientWeek rows are written once, from complete patient-days.
REBUILD_WEEKS = 2


def _age_band_sql(day: str) -> str:
    """SQL CASE of the AGE_BANDS label of ``p.birth_date`` on the date expression ``day``
    (as age_band_on and the raw query: 29 February minus whole years is the 28th)."""
    whens = " ".join(
        f"WHEN p.birth_date > ({day} - make_interval(years => {int(high) + 1}))::date THEN '{name}'"
        for name, _low, high in AGE_BANDS
        if high is not None
    )
    return f"CASE {whens} ELSE '{AGE_BANDS[-1][0]}' END"


# The raw sets of the chunk grouped once: per (patient, local day, part, NEWS2 total) the
# sets and the low-medium ("red") ones; part "c" complete or partial unknown, "p" partial.
_AGG_SQL = """
CREATE TEMP TABLE _rollup_agg ON COMMIT DROP AS
SELECT o.patient_id, (o.taken_at AT TIME ZONE %(tz)s)::date AS day,
       CASE WHEN o.news2_partial THEN 'p' ELSE 'c' END AS part,
       o.news2_total AS total, count(*) AS n,
       count(*) FILTER (WHERE o.news2_total >= 3 AND o.news2_total < 5
                        AND (o.news2 -> 'any_single_three') = 'true'::jsonb) AS red
FROM remote_care_observation o
WHERE o.taken_at >= %(lo)s AND o.taken_at < %(hi)s
GROUP BY 1, 2, 3, 4;

DELETE FROM _rollup_agg WHERE day < %(first)s OR day > %(last)s;

ANALYZE _rollup_agg;

CREATE TEMP TABLE _rollup_alerts ON COMMIT DROP AS
SELECT a.patient_id, (a.raised_at AT TIME ZONE %(tz)s)::date AS day, a.level, count(*) AS n
FROM remote_care_alert a
WHERE a.raised_at >= %(lo)s AND a.raised_at < %(hi)s
GROUP BY 1, 2, 3;

DELETE FROM _rollup_alerts WHERE day < %(first)s OR day > %(last)s;

CREATE TEMP TABLE _rollup_acks ON COMMIT DROP AS
SELECT a.patient_id, (a.raised_at AT TIME ZONE %(tz)s)::date AS day, a.level,
       ((extract(epoch FROM a.acknowledged_at) - extract(epoch FROM a.raised_at))
        * 1000000)::bigint AS delay_us,
       count(*) AS n
FROM remote_care_alert a
WHERE a.raised_at >= %(lo)s AND a.raised_at < %(hi)s AND a.acknowledged_at IS NOT NULL
GROUP BY 1, 2, 3, 4;

DELETE FROM _rollup_acks WHERE day < %(first)s OR day > %(last)s
"""

# Per (patient, local day): the hist document, sets and masks exactly as
# _patient_days_write builds them ("t" scored sets per total, "red", "u" unscored sets),
# with the patient's cohort keys now.
_PATIENT_DAYS_SQL = """
CREATE TEMP TABLE _rollup_pd ON COMMIT DROP AS
WITH parts AS (
    SELECT patient_id, day, part, sum(n)::bigint AS sets,
           jsonb_build_object(
               't', COALESCE(jsonb_object_agg(total::text, n) FILTER (WHERE total IS NOT NULL),
                             '{}'::jsonb),
               'red', sum(red)::bigint,
               'u', COALESCE(sum(n) FILTER (WHERE total IS NULL), 0)::bigint) AS h,
           COALESCE(bit_or(1::bigint << total) FILTER (WHERE total IS NOT NULL), 0)
           | CASE WHEN sum(red) > 0 THEN %(red)s::bigint ELSE 0 END AS mask
    FROM _rollup_agg
    GROUP BY 1, 2, 3
), days AS (
    SELECT patient_id, day, sum(sets)::bigint AS sets, jsonb_object_agg(part, h) AS hist,
           bit_or(mask | CASE part WHEN 'p' THEN %(partial)s::bigint
                                   ELSE %(complete)s::bigint END) AS mask_any,
           COALESCE(bit_or(mask) FILTER (WHERE part = 'c'), 0) AS mask_complete
    FROM parts
    GROUP BY 1, 2
), alerted AS (
    SELECT patient_id, day, jsonb_object_agg(level, n) AS a, bit_or(__ALERT_BITS__) AS bits
    FROM _rollup_alerts
    GROUP BY 1, 2
), acked AS (
    SELECT patient_id, day, jsonb_object_agg(level, delays) AS k
    FROM (
        SELECT patient_id, day, level, jsonb_object_agg(delay_us::text, n) AS delays
        FROM _rollup_acks
        GROUP BY 1, 2, 3
    ) x
    GROUP BY 1, 2
), teams AS (
    SELECT m.patient_id,
           string_agg(m.user_id::text || CASE WHEN m.role = %(responsible)s THEN 'r' ELSE '' END,
                      ',' ORDER BY m.user_id, m.role = %(responsible)s) AS team_set
    FROM patients_careteammembership m
    WHERE m.patient_id IN (SELECT DISTINCT patient_id FROM _rollup_agg)
    GROUP BY m.patient_id
)
SELECT d.patient_id, d.day, p.sex, __AGE_BAND__ AS age_band, mo.spo2_scale,
       COALESCE(t.team_set, '') AS team_set, d.sets,
       CASE WHEN al.a IS NULL THEN d.hist ELSE d.hist || jsonb_build_object('a', al.a) END
           || CASE WHEN ak.k IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('k', ak.k) END
           AS hist,
       d.mask_any | COALESCE(al.bits, 0) AS mask_any, d.mask_complete
FROM days d
JOIN patients_patient p ON p.id = d.patient_id
LEFT JOIN remote_care_monitoring mo ON mo.patient_id = d.patient_id
LEFT JOIN teams t ON t.patient_id = d.patient_id
LEFT JOIN alerted al ON al.patient_id = d.patient_id AND al.day = d.day
LEFT JOIN acked ak ON ak.patient_id = d.patient_id AND ak.day = d.day
"""

_PATIENT_DAYS_UPSERT_SQL = """
DELETE FROM remote_care_populationpatientday r
WHERE r.day >= %(first)s AND r.day <= %(last)s
  AND NOT EXISTS (SELECT 1 FROM _rollup_pd d WHERE d.patient_id = r.patient_id AND d.day = r.day);

INSERT INTO remote_care_populationpatientday
    (patient_id, day, sex, age_band, spo2_scale, team_set, sets, hist, mask_any,
     mask_complete, refreshed_at)
SELECT patient_id, day, sex, age_band, spo2_scale, team_set, sets, hist, mask_any,
       mask_complete, %(now)s
FROM _rollup_pd
ON CONFLICT (patient_id, day) DO UPDATE SET
    sex = EXCLUDED.sex, age_band = EXCLUDED.age_band, spo2_scale = EXCLUDED.spo2_scale,
    team_set = EXCLUDED.team_set, sets = EXCLUDED.sets, hist = EXCLUDED.hist,
    mask_any = EXCLUDED.mask_any, mask_complete = EXCLUDED.mask_complete,
    refreshed_at = EXCLUDED.refreshed_at
"""

# The day cells of the chunk, as _day_cells_rebuild sums its patient-days (the same
# figures, from the grouped sets rather than the hist documents): per patient-day x
# flavour (every set, complete, partial) x NEWS2 total (NULL: unscored), then per
# patient-day x flavour, then summed per day x cohort keys.
_CELLS_SQL = """
CREATE TEMP TABLE _rollup_pft ON COMMIT DROP AS
SELECT a.patient_id, a.day, f.partial, a.total, sum(a.n)::bigint AS n, sum(a.red)::bigint AS red
FROM _rollup_agg a
JOIN (VALUES (NULL::boolean, ARRAY['c', 'p']), (false, ARRAY['c']), (true, ARRAY['p']))
    AS f (partial, parts) ON a.part = ANY (f.parts)
GROUP BY 1, 2, 3, 4;

ANALYZE _rollup_pft;

CREATE TEMP TABLE _rollup_pf ON COMMIT DROP AS
SELECT d.day, d.sex, d.age_band, d.spo2_scale, d.team_set, x.*
FROM (
    SELECT patient_id, day AS d_day, partial, sum(n) AS sets,
           COALESCE(sum(n) FILTER (WHERE total IS NOT NULL), 0) AS scored,
           COALESCE(sum(n * total) FILTER (WHERE total IS NOT NULL), 0) AS news2_sum,
           COALESCE(sum(n) FILTER (WHERE total >= 7), 0) AS high,
           COALESCE(sum(n) FILTER (WHERE total >= 5 AND total < 7), 0) AS medium,
           sum(red) AS red
    FROM _rollup_pft
    GROUP BY 1, 2, 3
    HAVING sum(n) > 0
) x
JOIN _rollup_pd d ON d.patient_id = x.patient_id AND d.day = x.d_day;

ANALYZE _rollup_pf;

DELETE FROM remote_care_populationdaycell WHERE day >= %(first)s AND day <= %(last)s;

INSERT INTO remote_care_populationdaycell
    (day, sex, age_band, spo2_scale, team_set, partial, kind, value, sets, patients, scored,
     news2_sum, high, elevated)
SELECT day, sex, age_band, spo2_scale, team_set, partial, 'all', 0, sum(sets), count(*),
       sum(scored), sum(news2_sum), sum(high), sum(high + medium)
FROM _rollup_pf GROUP BY 1, 2, 3, 4, 5, 6
UNION ALL
SELECT d.day, d.sex, d.age_band, d.spo2_scale, d.team_set, t.partial, 'total', t.total,
       sum(t.n), count(*), 0, 0, 0, 0
FROM _rollup_pft t
JOIN _rollup_pd d ON d.patient_id = t.patient_id AND d.day = t.day
WHERE t.total IS NOT NULL AND t.n > 0
GROUP BY 1, 2, 3, 4, 5, 6, 8
UNION ALL
SELECT day, sex, age_band, spo2_scale, team_set, partial, 'band', b.band, sum(b.n), count(*),
       0, 0, 0, 0
FROM _rollup_pf
CROSS JOIN LATERAL (VALUES (0, scored - high - medium - red), (1, red), (2, medium), (3, high))
    AS b (band, n)
WHERE b.n > 0 GROUP BY 1, 2, 3, 4, 5, 6, 8
UNION ALL
SELECT day, sex, age_band, spo2_scale, team_set, partial, k.kind, 0, sum(k.n), count(*),
       0, 0, 0, 0
FROM _rollup_pf
CROSS JOIN LATERAL (VALUES ('high', high), ('rest', scored - high)) AS k (kind, n)
WHERE k.n > 0 GROUP BY 1, 2, 3, 4, 5, 6, 7
UNION ALL
SELECT d.day, d.sex, d.age_band, d.spo2_scale, d.team_set, NULL::boolean, 'alert', lv.idx,
       sum(a.n), count(*), 0, 0, 0, 0
FROM _rollup_alerts a
JOIN _rollup_pd d ON d.patient_id = a.patient_id AND d.day = a.day
JOIN (VALUES __ALERT_LEVELS__) AS lv (level, idx) ON lv.level = a.level
GROUP BY 1, 2, 3, 4, 5, 6, 8
UNION ALL
SELECT d.day, d.sex, d.age_band, d.spo2_scale, d.team_set, NULL::boolean, 'alerted', 0,
       sum(a.n), count(DISTINCT a.patient_id), 0, 0, 0, 0
FROM _rollup_alerts a
JOIN _rollup_pd d ON d.patient_id = a.patient_id AND d.day = a.day
GROUP BY 1, 2, 3, 4, 5, 6
UNION ALL
SELECT d.day, d.sex, d.age_band, d.spo2_scale, d.team_set, NULL::boolean, s.kind, lv.idx,
       sum(s.n), count(*), 0, 0, 0, 0
FROM (
    SELECT a.patient_id, a.day, a.level, k.kind, k.n
    FROM _rollup_alerts a
    LEFT JOIN (SELECT patient_id, day, level, sum(n) AS n FROM _rollup_acks GROUP BY 1, 2, 3)
        ak ON ak.patient_id = a.patient_id AND ak.day = a.day AND ak.level = a.level
    CROSS JOIN LATERAL (VALUES ('acked', COALESCE(ak.n, 0)),
                               ('unacked', a.n - COALESCE(ak.n, 0))) AS k (kind, n)
    WHERE k.n > 0
) s
JOIN _rollup_pd d ON d.patient_id = s.patient_id AND d.day = s.day
JOIN (VALUES __ALERT_LEVELS__) AS lv (level, idx) ON lv.level = s.level
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;

DELETE FROM remote_care_populationackdelay WHERE day >= %(first)s AND day <= %(last)s;

INSERT INTO remote_care_populationackdelay
    (day, sex, age_band, spo2_scale, team_set, level, delay_us, alerts)
SELECT d.day, d.sex, d.age_band, d.spo2_scale, d.team_set, lv.idx, k.delay_us, sum(k.n)
FROM _rollup_acks k
JOIN _rollup_pd d ON d.patient_id = k.patient_id AND d.day = k.day
JOIN (VALUES __ALERT_LEVELS__) AS lv (level, idx) ON lv.level = k.level
GROUP BY 1, 2, 3, 4, 5, 6, 7
"""

# The PopulationPatientWeek rows of the weeks starting in [first, last] (Mondays).
_WEEKS_SQL = """
DELETE FROM remote_care_populationpatientweek WHERE week >= %(first)s AND week <= %(last)s;

INSERT INTO remote_care_populationpatientweek
    (patient_id, week, sex, age_band, spo2_scale, team_set, days, mask_any, mask_complete)
SELECT patient_id, date_trunc('week', day)::date, sex, age_band, spo2_scale, team_set,
       count(*), bit_or(mask_any), bit_or(mask_complete)
FROM remote_care_populationpatientday
WHERE day >= %(first)s AND day < %(last)s::date + 7
GROUP BY 1, 2, 3, 4, 5, 6;
"""


# Only constants of this module are spliced into the SQL (the levels are Alert.Level values).
_ALERT_BITS_SQL = (
    "CASE level "
    + " ".join(f"WHEN '{level}' THEN {bit}::bigint" for level, bit in ALERT_BITS.items())
    + " END"
)
_ALERT_LEVELS_SQL = ", ".join(f"('{level}', {i})" for i, level in enumerate(ALERT_LEVELS))


def _rollup_rebuild_sql(first: date, last: date) -> int:
    """Rebuild every roll-up of the local days [first, last] (whole weeks, Monday to
    Sunday) in one transaction, set-based: the raw sets grouped once per (patient, day,
    part, total); from that, the patient-days upserted (those left without sets deleted)
    and the day cells summed; the weeks OR-ed from the patient-days. Returns the
    patient-days written."""
    tz = timezone.get_current_timezone()
    lo = timezone.make_aware(datetime.combine(first, time.min), tz)
    hi = timezone.make_aware(datetime.combine(last + timedelta(days=1), time.min), tz)
    params: dict[str, Any] = {
        "tz": str(tz),
        "lo": lo,
        "hi": hi,
        "first": first,
        "last": last,
        "red": MASK_RED,
        "partial": MASK_PARTIAL,
        "complete": MASK_COMPLETE,
        "responsible": CareTeamMembership.Role.RESPONSIBLE.value,
        "now": timezone.now(),
    }
    with transaction.atomic(), connection.cursor() as cursor:
        # Hash aggregates over a week of sets; the default 4 MB spills them to disk.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        for statement in _statements(_AGG_SQL):
            cursor.execute(statement, params)
        patient_days = _PATIENT_DAYS_SQL.replace("__AGE_BAND__", _age_band_sql("d.day"))
        cursor.execute(patient_days.replace("__ALERT_BITS__", _ALERT_BITS_SQL), params)
        statements = _statements(_PATIENT_DAYS_UPSERT_SQL)
        cursor.execute(statements[0], params)
        cursor.execute(statements[1], params)
        written = cursor.rowcount
        # As _refresh_pairs(whole_days=True): every key of these days, after the writes.
        _lock_cells({day: _day_keys(day) for day in _days(first, last)})
        cells = _CELLS_SQL.replace("__ALERT_LEVELS__", _ALERT_LEVELS_SQL)
        for statement in (*_statements(cells), *_statements(_WEEKS_SQL)):
            cursor.execute(statement, params)
        cursor.execute(
            "DROP TABLE _rollup_agg, _rollup_alerts, _rollup_acks, _rollup_pd, _rollup_pft, "
            "_rollup_pf"
        )
    return written


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";\n") if s.strip()]
