"""Population selectors over the roll-up tables (PopulationDayCell, PopulationPatientDay):
the same signatures and results as the raw selectors (``selectors``) and differencing
(``differencing``), read from rows whose number grows with days x cohort keys (cells) or
patient-days, never with observation sets.

Alerts come from the cells too (ALERT per level, ALERTED any level: alerts and alerted
patient-days; ACKED / UNACKED per level: acknowledged or not) and distinct patients alerted
from the masks' alert bits (ALERT_BITS). Time to acknowledge reads the multiset of
acknowledge delays per day x cohort keys x level (PopulationAckDelay, exact to the
microsecond), so its percentiles interpolate exactly as percentile_cont over the raw alerts.
What stays on the raw tables: the deterioration model's scores (the model-risk measure's
statistics and differencing).

Exactness: a cell's ``patients`` counts the patient-days with such a set on that day; a
patient-day has one cohort key, so summing cells of one day over keys gives that day's exact
distinct patients. Distinct patients over several days are never summed: they come from one
GROUP BY patient over the patient-day table (``_profile``), with the masks of NEWS2 totals
and flags OR-ed per patient.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncWeek

from medai_site.core.roles import Role, has_role
from remote_care.analytics.differencing import (
    _REFUSED_KINDS,
    EVERYTHING,
    _unconstrained,
    _unsafe_split,
    _whole,
)
from remote_care.analytics.filters import (
    ALERT_LEVELS,
    PERCENTILES,
    RISK_BANDS,
    SMALL_CELL,
    Dimension,
    PopulationFilter,
    RiskMeasure,
    _cohort_order,
    cohort_labels,
    measure_for,
    population_sees_all,
)
from remote_care.analytics.selectors import (
    AcknowledgeRow,
    BandRow,
    CohortRow,
    HistogramRow,
    PeriodRow,
    Summary,
    _local_date,
    _model_risk_stats,
    _period_start,
    _pkey,
    _trunc,
    delay_from_us,
    percentile_from_counts,
    population_risk_scores,
)
from remote_care.analytics.services import (
    ALERT_BITS,
    KEY_COLUMNS,
    MASK_ALERTED,
    MASK_COMPLETE,
    MASK_PARTIAL,
    MASK_RED,
    week_of,
)
from remote_care.models import (
    PopulationAckDelay,
    PopulationDayCell,
    PopulationPatientDay,
    PopulationPatientWeek,
)

Kind = PopulationDayCell.Kind


def _member_regex(user_id: int) -> str:
    """Matches a team_set ("12r,31") that has ``user_id`` as a member, in any role."""
    return rf"(^|,){int(user_id)}r?(,|$)"


def responsible_ids(team_set: str) -> list[int]:
    """The responsible clinicians' user ids of a team_set, ascending."""
    return [int(m[:-1]) for m in team_set.split(",") if m.endswith("r")]


def _scoped(
    qs: QuerySet,
    f: PopulationFilter,
    *,
    user: Any,
    constrained: bool = True,
    in_range: bool = True,
) -> QuerySet:
    """Roll-up rows of the user's scope (their care teams', unless they see everyone) in
    the range (unless not ``in_range``: the caller bounds it), with ``f``'s attribute
    filters when ``constrained``."""
    if in_range:
        qs = qs.filter(day__gte=f.start, day__lte=f.end)
    if not population_sees_all(user=user):
        active = getattr(user, "is_authenticated", False) and user.is_active
        if not (active and has_role(user, Role.CLINICIAN)):
            return qs.none()
        qs = qs.filter(team_set__regex=_member_regex(user.pk))
    if not constrained:
        return qs
    if f.sex:
        qs = qs.filter(sex=f.sex)
    if f.spo2_scale:
        qs = qs.filter(spo2_scale=f.spo2_scale)
    if f.team:
        qs = qs.filter(team_set__regex=_member_regex(f.team))
    if f.age_band:
        qs = qs.filter(age_band=f.age_band)
    return qs


def _flavour(f: PopulationFilter) -> Q:
    """The cells of NEWS2 statistics: complete sets only, or every set."""
    return Q(partial=False) if f.complete_only else Q(partial__isnull=True)


def _cells(
    user: Any, f: PopulationFilter, kind: str, flavour: Q, *, constrained: bool = True
) -> QuerySet:
    qs = PopulationDayCell.objects.order_by().filter(flavour, kind=kind)
    return _scoped(qs, f, user=user, constrained=constrained)


def _cohort_keys(by: Dimension, row: Mapping[str, Any]) -> list[Any]:
    """The cohort keys of ``f.by`` a roll-up row belongs to (several for a patient with
    several responsible clinicians; [None] for one with none)."""
    if by == Dimension.SEX:
        return [row["sex"]]
    if by == Dimension.AGE:
        return [row["age_band"]]
    if by == Dimension.SCALE:
        return [row["spo2_scale"]]
    if by == Dimension.TEAM:
        return responsible_ids(row["team_set"]) or [None]
    return ["all"]


def _cohort_columns(by: Dimension) -> tuple[str, ...]:
    return {
        Dimension.SEX: ("sex",),
        Dimension.AGE: ("age_band",),
        Dimension.SCALE: ("spo2_scale",),
        Dimension.TEAM: ("team_set",),
    }.get(by, ())


def _row_matches(f: PopulationFilter, row: Mapping[str, Any]) -> bool:
    """A cell row grouped by (at least) the columns ``f`` filters on is inside ``f``'s
    attribute filters (as _scoped's)."""
    return (
        (not f.sex or row["sex"] == f.sex)
        and (not f.spo2_scale or row["spo2_scale"] == f.spo2_scale)
        and (not f.age_band or row["age_band"] == f.age_band)
        and (not f.team or f.team in _members(row["team_set"]))
    )


def _total_cells(user: Any, f: PopulationFilter, profile: Any = None) -> list[dict[str, Any]]:
    """The TOTAL cells of ``f``'s flavour in scope and range, without ``f``'s attribute
    filters, per (day, NEWS2 total, cohort and atom columns): ``sets`` and patient-days
    (``n``). One query serves the periods' percentiles, the histogram, the cohorts' medians
    and their unsafe cells (they filter or sum the rows here); read once per request when
    ``profile`` (a Profile) carries the memo."""
    memo = getattr(profile, "memo", None)
    key = ("total", f)
    if memo is not None and key in memo:
        return memo[key]
    rows = list(_total_cells_query(user, f))
    if memo is not None:
        memo[key] = rows
    return rows


def _total_cells_query(user: Any, f: PopulationFilter) -> QuerySet:
    """The query of _total_cells."""
    columns = sorted({"day", "value", *_cohort_columns(f.by), *_atom_columns(f, cohorts=True)})
    return (
        _cells(user, _unconstrained(f), Kind.TOTAL, _flavour(f))
        .values(*columns)
        .annotate(sets=Sum("sets"), n=Sum("patients"))
    )


# --- Distinct patients over a range --------------------------------------------------------


@dataclass(frozen=True)
class _ProfileRow:
    patient: int
    sex: str
    age_band: str
    spo2_scale: int | None
    team_set: str
    mask_any: int
    mask_complete: int

    def matches(self, f: PopulationFilter) -> bool:
        """Inside ``f``'s attribute filters (the scope and range are the query's)."""
        return (
            (not f.sex or self.sex == f.sex)
            and (not f.spo2_scale or self.spo2_scale == f.spo2_scale)
            and (not f.age_band or self.age_band == f.age_band)
            and (not f.team or f.team in _members(self.team_set))
        )

    def mask(self, f: PopulationFilter) -> int:
        return self.mask_complete if f.complete_only else self.mask_any


def _members(team_set: str) -> set[int]:
    return {int(m.rstrip("r")) for m in team_set.split(",") if m}


class Profile(list[_ProfileRow]):
    """The rows of _profile, plus what the page's selectors read once and share for the
    same request (``memo``: the TOTAL cells, _total_cells)."""

    def __init__(self, rows: Iterable[_ProfileRow] = ()) -> None:
        super().__init__(rows)
        self.memo: dict[Any, Any] = {}


def _profile(*, user: Any, f: PopulationFilter) -> Profile:
    """One row per patient and cohort key over the range, in scope, without ``f``'s
    attribute filters (``_ProfileRow.matches`` applies them): its NEWS2 masks OR-ed over
    the range's whole weeks (week roll-ups) and its clipped days (patient-days), one GROUP BY
    patient per table on PostgreSQL, distinct rows OR-ed here elsewhere."""
    group = ("patient_id", *KEY_COLUMNS)
    masks: dict[tuple, list[int]] = {}
    for qs in _profile_queries(user=user, f=f):
        for r in qs:
            key = tuple(r[g] for g in group)
            m = masks.setdefault(key, [0, 0])
            m[0] |= r["m_any"]
            m[1] |= r["m_complete"]
    return Profile(_ProfileRow(*key, *m) for key, m in masks.items())


def _whole_weeks(f: PopulationFilter) -> tuple[date, date] | None:
    """The Mondays of the first and last ISO weeks inside [f.start, f.end], if any."""
    first = week_of(f.start + timedelta(days=6))
    last = week_of(f.end + timedelta(days=1)) - timedelta(days=7)
    return (first, last) if first <= last else None


def _profile_queries(*, user: Any, f: PopulationFilter) -> list[QuerySet]:
    """The rows _profile ORs up: the week roll-ups of the range's whole weeks and the
    patient-days of its clipped ends, each per patient and cohort key on PostgreSQL
    (bit_or), distinct (patient, key, masks) elsewhere. Exact: a patient-day is in exactly
    one of the two parts, and OR is associative."""
    days = _scoped(PopulationPatientDay.objects.order_by(), f, user=user, constrained=False)
    weeks = _whole_weeks(f)
    parts = [days]
    if weeks is not None:
        first, last = weeks
        parts = [
            _scoped(
                PopulationPatientWeek.objects.order_by().filter(week__gte=first, week__lte=last),
                f,
                user=user,
                constrained=False,
                in_range=False,
            ),
            days.exclude(day__gte=first, day__lt=last + timedelta(days=7)),
        ]
    return [_grouped_masks(qs) for qs in parts]


def _grouped_masks(qs: QuerySet) -> QuerySet:
    group = ("patient_id", *KEY_COLUMNS)
    if connection.vendor == "postgresql":
        from django.contrib.postgres.aggregates import BitOr

        return qs.values(*group).annotate(
            m_any=BitOr("mask_any"), m_complete=BitOr("mask_complete")
        )
    return (
        qs.values(*group, "mask_any", "mask_complete")
        .distinct()
        .annotate(m_any=F("mask_any"), m_complete=F("mask_complete"))
    )


def _inside(profile: list[_ProfileRow], f: PopulationFilter) -> Profile:
    """The rows of ``profile`` inside ``f``'s attribute filters (a Profile whose memo
    _patient_masks fills; the same one for the request when ``profile`` has a memo)."""
    memo = getattr(profile, "memo", None)
    key = ("inside", f)
    if memo is not None and key in memo:
        return memo[key]
    inside = Profile(r for r in profile if r.matches(f))
    if memo is not None:
        memo[key] = inside
    return inside


def _distinct(rows: Iterable[_ProfileRow], test: Callable[[_ProfileRow], bool]) -> int:
    return len({r.patient for r in rows if test(r)})


def _with_bits(rows: Iterable[_ProfileRow], f: PopulationFilter, bits: int) -> int:
    """Distinct patients with any of ``bits`` in their NEWS2 mask (complete sets only with
    complete_only)."""
    return sum(1 for m in _patient_masks(rows, complete=f.complete_only).values() if m & bits)


def _patient_masks(rows: Iterable[_ProfileRow], *, complete: bool) -> dict[int, int]:
    """Per patient of ``rows``, their mask (of complete sets, or of every set and alert)
    OR-ed over their cohort keys: one pass, kept in a Profile's memo for the other counts
    of the same request."""
    memo = getattr(rows, "memo", None)
    key = ("patient masks", complete)
    if memo is not None and key in memo:
        return memo[key]
    masks: dict[int, int] = defaultdict(int)
    for r in rows:
        masks[r.patient] |= r.mask_complete if complete else r.mask_any
    if memo is not None:
        memo[key] = masks
    return masks


def _total_bits(totals: Iterable[int]) -> int:
    bits = 0
    for t in totals:
        bits |= 1 << t
    return bits


# --- Figures -------------------------------------------------------------------------------


def _percentiles(counts: Mapping[float, int]) -> dict[str, float | None]:
    return {_pkey(p): percentile_from_counts(counts, p) for p in PERCENTILES}


def _alert_levels(periods: dict[date, PeriodRow], *, user: Any, f: PopulationFilter) -> None:
    """Alerts per period and level from the ALERT cells (the raw query's per-bucket counts)."""
    rows = _cells(user, f, Kind.ALERT, Q(partial__isnull=True)).values("day", "value")
    for r in rows.annotate(n=Sum("sets")):
        key = _period_start(r["day"], f.period)
        alerts = periods.setdefault(key, PeriodRow(period=key)).alerts
        level = ALERT_LEVELS[r["value"]]
        alerts[level] = alerts.get(level, 0) + r["n"]


def _week_patients(*, user: Any, f: PopulationFilter) -> dict[date, int]:
    rows = (
        _scoped(PopulationPatientDay.objects.order_by(), f, user=user)
        .annotate(week=TruncWeek("day"))
        .values("week")
        .annotate(n=Count("patient", distinct=True))
    )
    return {_local_date(r["week"]): r["n"] for r in rows}


def population_periods(
    *,
    user: Any,
    f: PopulationFilter,
    measure: RiskMeasure | None = None,
    profile: Profile | None = None,
) -> list[PeriodRow]:
    """As selectors.population_periods, from the day cells (the model's risk statistics
    from their own table); ``profile`` only lends its memo (_total_cells)."""
    if measure is None:
        measure = measure_for(f.measure)
    model = measure.source == "model"
    periods: dict[date, PeriodRow] = {}
    every = _cells(user, f, Kind.ALL, Q(partial__isnull=True)).values("day")
    for r in every.annotate(sets=Sum("sets"), patients=Sum("patients")):
        key = _period_start(r["day"], f.period)
        p = periods.setdefault(key, PeriodRow(period=key))
        p.sets += r["sets"]
        p.patients += r["patients"]
        p.patient_days += r["patients"]
    stats = _cells(user, f, Kind.ALL, _flavour(f)).values("day")
    sums: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in stats.annotate(
        scored=Sum("scored"), total=Sum("news2_sum"), high=Sum("high"), elevated=Sum("elevated")
    ):
        s = sums[_period_start(r["day"], f.period)]
        for i, name in enumerate(("scored", "total", "high", "elevated")):
            s[i] += r[name]
    for key, (scored, total, high, elevated) in sums.items():
        p = periods[key]
        p.scored = p.news2_scored = scored
        p.mean = p.news2_mean = total / scored if scored else None
        p.high, p.elevated = high, elevated
    if f.period == "week":
        for key, n in _week_patients(user=user, f=f).items():
            periods[key].patients = n
    if model:
        _model_risk_stats(periods, user=user, f=f, measure=measure)
    else:
        histograms: dict[date, dict[float, int]] = defaultdict(lambda: defaultdict(int))
        for r in _total_cells(user, f, profile):
            if _row_matches(f, r):
                histograms[_period_start(r["day"], f.period)][r["value"]] += r["sets"]
        for p in periods.values():
            p.percentiles = _percentiles(histograms.get(p.period, {}))
    _alert_levels(periods, user=user, f=f)
    return [periods[k] for k in sorted(periods)]


def population_summary(
    *,
    user: Any,
    f: PopulationFilter,
    periods: list[PeriodRow] | None = None,
    profile: list[_ProfileRow] | None = None,
) -> Summary:
    """As selectors.population_summary; distinct patients from the patient-day table."""
    if periods is None:
        periods = population_periods(user=user, f=f)
    if profile is None:
        profile = _profile(user=user, f=f)
    scored = sum(p.news2_scored for p in periods)
    return Summary(
        patients=_distinct(profile, lambda r: r.matches(f)),
        sets=sum(p.sets for p in periods),
        scored=scored,
        patient_days=sum(p.patient_days for p in periods),
        alerts=sum(p.alert_total for p in periods),
        mean_news2=(
            sum((p.news2_mean or 0.0) * p.news2_scored for p in periods if p.news2_scored) / scored
        )
        if scored
        else None,
    )


def news2_histogram(
    *, user: Any, f: PopulationFilter, profile: list[_ProfileRow] | None = None
) -> list[HistogramRow]:
    """As selectors.news2_histogram."""
    if profile is None:
        profile = _profile(user=user, f=f)
    sets: dict[int, int] = defaultdict(int)
    for r in _total_cells(user, f, profile):
        if _row_matches(f, r):
            sets[r["value"]] += r["sets"]
    inside = _inside(profile, f)
    return [HistogramRow(v, sets[v], _with_bits(inside, f, 1 << v)) for v in sorted(sets)]


#: Per band (RISK_BANDS order): the mask bits whose patients selectors.news2_bands counts
#: (low: totals 0-2 only, a lower bound, as there).
_BAND_BITS = (_total_bits(range(3)), MASK_RED, _total_bits((5, 6)), _total_bits(range(7, 21)))


def news2_bands(
    *, user: Any, f: PopulationFilter, profile: list[_ProfileRow] | None = None
) -> list[BandRow]:
    """As selectors.news2_bands."""
    if profile is None:
        profile = _profile(user=user, f=f)
    sets = {
        r["value"]: r["n"]
        for r in _cells(user, f, Kind.BAND, _flavour(f)).values("value").annotate(n=Sum("sets"))
    }
    total = sum(sets.values())
    inside = _inside(profile, f)
    return [
        BandRow(
            band=band.value,
            sets=sets.get(i, 0),
            patients=_with_bits(inside, f, _BAND_BITS[i]),
            share=sets.get(i, 0) / total if total else None,
        )
        for i, band in enumerate(RISK_BANDS)
    ]


def cohort_comparison(
    *, user: Any, f: PopulationFilter, profile: list[_ProfileRow] | None = None
) -> list[CohortRow]:
    """As selectors.cohort_comparison: sets, patient-days, scored and high-risk sets and the
    median from the cells, distinct patients from the patient-days, alerts from theirs."""
    if profile is None:
        profile = _profile(user=user, f=f)
    columns = _cohort_columns(f.by)
    cohorts: dict[Any, CohortRow] = {}
    every = _cells(user, f, Kind.ALL, Q(partial__isnull=True)).values(*columns)
    for r in every.annotate(sets=Sum("sets"), days=Sum("patients")):
        for key in _cohort_keys(f.by, r):
            c = cohorts.setdefault(key, CohortRow(key=key, label=""))
            c.sets += r["sets"]
            c.patient_days += r["days"]
    stats = _cells(user, f, Kind.ALL, _flavour(f)).values(*columns)
    for r in stats.annotate(scored=Sum("scored"), high=Sum("high")):
        for key in _cohort_keys(f.by, r):
            cohorts[key].scored += r["scored"]
            cohorts[key].high += r["high"]
    histograms: dict[Any, dict[float, int]] = defaultdict(lambda: defaultdict(int))
    for r in _total_cells(user, f, profile):
        if _row_matches(f, r):
            for key in _cohort_keys(f.by, r):
                histograms[key][r["value"]] += r["sets"]
    for key, counts in histograms.items():
        cohorts[key].median = percentile_from_counts(counts, 0.5)
    patients: dict[Any, set[int]] = defaultdict(set)
    for p in profile:
        if p.matches(f):
            for key in _cohort_keys(f.by, p.__dict__):
                patients[key].add(p.patient)
    for key, row in cohorts.items():
        row.patients = len(patients[key])
    _cohort_alerts(cohorts, user=user, f=f, profile=profile)
    labels = cohort_labels(f.by, cohorts)
    for key, row in cohorts.items():
        row.label = labels[key]
    return [cohorts[k] for k in sorted(cohorts, key=lambda k: _cohort_order(f.by, k))]


def _cohort_alerts(
    cohorts: dict[Any, CohortRow],
    *,
    user: Any,
    f: PopulationFilter,
    profile: list[_ProfileRow],
) -> None:
    """Alerts per cohort from the ALERTED cells; patients alerted from the profile's alert
    bits (a patient in a cohort on several days counts once, as the raw distinct count)."""
    counts: dict[Any, int] = defaultdict(int)
    rows = _cells(user, f, Kind.ALERTED, Q(partial__isnull=True)).values(*_cohort_columns(f.by))
    for r in rows.annotate(n=Sum("sets")):
        for key in _cohort_keys(f.by, r):
            counts[key] += r["n"]
    patients: dict[Any, set[int]] = defaultdict(set)
    for p in profile:
        if p.mask_any & MASK_ALERTED and p.matches(f):
            for key in _cohort_keys(f.by, p.__dict__):
                patients[key].add(p.patient)
    for key, n in counts.items():
        if n and key in cohorts:
            cohorts[key].alerts = n
            cohorts[key].alert_patients = len(patients[key])


def acknowledge_times(
    *, user: Any, f: PopulationFilter, profile: list[_ProfileRow] | None = None
) -> list[AcknowledgeRow]:
    """As selectors.acknowledge_times: alerts and acknowledged ones per level from the
    cells, distinct patients from the profile's alert bits, the median and 90th percentile
    from the acknowledge delays (one GROUP BY level, delay)."""
    if profile is None:
        profile = _profile(user=user, f=f)
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for i, kind in enumerate((Kind.ALERT, Kind.ACKED)):
        rows = _cells(user, f, kind, Q(partial__isnull=True)).values("value")
        for r in rows.annotate(n=Sum("sets")):
            counts[r["value"]][i] += r["n"]
    delays: dict[int, dict[float, int]] = defaultdict(dict)
    rows = _scoped(PopulationAckDelay.objects.order_by(), f, user=user).values("level", "delay_us")
    for r in rows.annotate(n=Sum("alerts")):
        delays[r["level"]][r["delay_us"]] = r["n"]
    masks = _patient_masks(_inside(profile, f), complete=False)
    result = []
    for index, level in enumerate(ALERT_LEVELS):
        alerts, acknowledged = counts.get(index, (0, 0))
        if not alerts:
            continue
        median, p90 = (
            delay_from_us(percentile_from_counts(delays.get(index, {}), p)) for p in (0.5, 0.9)
        )
        patients = sum(1 for m in masks.values() if m & ALERT_BITS[level])
        result.append(AcknowledgeRow(level, alerts, patients, acknowledged, median, p90))
    return result


# --- Differencing --------------------------------------------------------------------------


def population_refused(
    *, user: Any, f: PopulationFilter, profile: list[_ProfileRow] | None = None
) -> bool:
    """As differencing.population_refused, from the patient-day table."""
    if profile is None:
        profile = _profile(user=user, f=f)
    atoms: dict[tuple, set[int]] = defaultdict(set)
    for p in profile:
        partials: tuple[Any, ...] = (None,)
        if f.complete_only:
            partials = tuple(
                v for v, bit in ((True, MASK_PARTIAL), (False, MASK_COMPLETE)) if p.mask_any & bit
            )
        base = (
            p.team_set if f.team else None,
            p.sex if f.sex else None,
            p.spo2_scale if f.spo2_scale else None,
            p.age_band if f.age_band else None,
        )
        for partial in partials:
            atoms[(*base, partial)].add(p.patient)
    return any(0 < len(ids) < SMALL_CELL for ids in atoms.values())


def _atom(f: PopulationFilter, row: Mapping[str, Any], *, cohorts: bool) -> tuple:
    """The atom of a cell row: the values of the attributes ``f`` constrains
    (differencing._atom_fields)."""
    team: Any = None
    if f.team:
        team = row["team_set"]
    elif cohorts and f.by == Dimension.TEAM:
        ids = responsible_ids(row["team_set"])
        team = ",".join(map(str, ids)) if len(ids) > 1 else None
    return (
        team,
        row["sex"] if f.sex else None,
        row["spo2_scale"] if f.spo2_scale else None,
        row["age_band"] if f.age_band else None,
        row["partial"] if f.complete_only else None,
    )


def _atom_columns(f: PopulationFilter, *, cohorts: bool) -> tuple[str, ...]:
    columns = []
    if f.team or (cohorts and f.by == Dimension.TEAM):
        columns.append("team_set")
    if f.sex:
        columns.append("sex")
    if f.spo2_scale:
        columns.append("spo2_scale")
    if f.age_band:
        columns.append("age_band")
    if f.complete_only:
        columns.append("partial")
    return tuple(columns)


def _unsafe_cell_days(
    user: Any,
    f: PopulationFilter,
    kind: str,
    *,
    key: Callable[[Mapping[str, Any]], list[Any]],
    key_columns: tuple[str, ...] = (),
    cohorts: bool = False,
    scored: bool = False,
) -> set[tuple[Any, date]]:
    """(cell key, day) of every cell with an atom of 1 to SMALL_CELL - 1 patients that day:
    the cells' patient-days summed per (key, atom, day) (as differencing._unsafe_days).
    ``scored``: only scored sets count (complete ones with complete_only, whose atom is
    then always "complete"); else, with complete_only, partial and complete sets are the
    two atoms of the partial flag."""
    if scored:
        flavour = _flavour(f)
    elif f.complete_only:
        flavour = Q(partial__isnull=False)
    else:
        flavour = Q(partial__isnull=True)
    columns = {"day", *key_columns, *_atom_columns(f, cohorts=cohorts)}
    rows = (
        _cells(user, _unconstrained(f), kind, flavour)
        .values(*sorted(columns))
        .annotate(n=Sum("patients"))
    )
    return _unsafe_sums(f, rows, key=key, cohorts=cohorts)


def _unsafe_sums(
    f: PopulationFilter,
    rows: Iterable[Mapping[str, Any]],
    *,
    key: Callable[[Mapping[str, Any]], list[Any]],
    cohorts: bool,
) -> set[tuple[Any, date]]:
    """(cell key, day) of the unsafe atoms of cell rows (patient-days ``n``) grouped by at
    least the day, the key's and the atoms' columns: summed per (key, atom, day)."""
    sums: dict[tuple, int] = defaultdict(int)
    for r in rows:
        atom = _atom(f, r, cohorts=cohorts)
        for k in key(r):
            sums[(k, atom, r["day"])] += r["n"]
    return {(k, day) for (k, _atom_key, day), n in sums.items() if 0 < n < SMALL_CELL}


def _keys(found: set[tuple[Any, date]]) -> set:
    return {k for k, _day in found}


def _by_period(f: PopulationFilter) -> Callable[[Mapping[str, Any]], list[Any]]:
    return lambda r: [_period_start(r["day"], f.period)]


def _whole_range(_row: Mapping[str, Any]) -> list[Any]:
    return [()]


def _unsafe_periods(
    user: Any, f: PopulationFilter, news2_days: set[date] | None, profile: Any = None
) -> dict:
    measure = measure_for(f.measure)
    period = _by_period(f)
    cells = _unsafe_cell_days(user, f, Kind.ALL, key=period)
    high: set = set()
    if measure.source != "model" and measure.high is not None:
        for part in (Kind.HIGH, Kind.REST):
            high |= _keys(_unsafe_cell_days(user, f, part, key=period, scored=True))
    u = _unconstrained(f)
    alerted = _unsafe_alert_days(user, f, Kind.ALERTED, key=period)
    levels = _unsafe_alert_days(
        user,
        f,
        Kind.ALERT,
        key=lambda r: [(_period_start(r["day"], f.period), r["value"])],
        key_columns=("value",),
    )
    if measure.source == "model":
        risk = population_risk_scores(user=user, f=u, measure=measure)
        model_parts = (
            {"high": measure.high, "rest": ~measure.high} if measure.high is not None else {}
        )
        split = _unsafe_split(
            risk,
            replace(f, complete_only=False),
            {"bucket": _trunc("taken_at", f.period)},
            model_parts,
            observations=True,
        )
        if measure.high is not None:
            high = split["high"] | split["rest"]
        stats = split[""]
    else:
        if news2_days is None:
            news2_days = _unsafe_news2(user, f, profile)["days"]
        stats = {_period_start(day, f.period) for day in news2_days}
    return {
        "cells": _keys(cells),
        "alerts": _keys(alerted),
        "levels": {bucket for (bucket, _level), _day in levels},
        "high": high,
        "stats": stats,
        "days": {day for _k, day in cells},
        "alert_days": {day for _k, day in alerted},
    }


def _unsafe_alert_days(
    user: Any,
    f: PopulationFilter,
    kind: str,
    *,
    key: Callable[[Mapping[str, Any]], list[Any]],
    key_columns: tuple[str, ...] = (),
    cohorts: bool = False,
) -> set[tuple[Any, date]]:
    """As _unsafe_cell_days over the alert cells: alerts carry no partial flag, so
    complete_only is not one of their atoms (differencing._atom_fields, observations=False)."""
    return _unsafe_cell_days(
        user,
        replace(f, complete_only=False),
        kind,
        key=key,
        key_columns=key_columns,
        cohorts=cohorts,
    )


def _unsafe_news2(user: Any, f: PopulationFilter, profile: Any = None) -> dict:
    unsafe = _unsafe_sums(
        f, _total_cells(user, f, profile), key=lambda r: [r["value"]], cohorts=False
    )
    return {"cells": _whole(unsafe), "days": {day for _t, day in unsafe}}


def _unsafe_cohorts(user: Any, f: PopulationFilter, profile: Any = None) -> dict:
    columns = _cohort_columns(f.by)

    def cohort(r: Mapping[str, Any]) -> list[Any]:
        return _cohort_keys(f.by, r)

    sets = _unsafe_cell_days(user, f, Kind.ALL, key=cohort, key_columns=columns, cohorts=True)
    high = set()
    for part in (Kind.HIGH, Kind.REST):
        high |= _unsafe_cell_days(
            user, f, part, key=cohort, key_columns=columns, cohorts=True, scored=True
        )
    median = _unsafe_sums(
        f,
        _total_cells(user, f, profile),
        key=lambda r: [(c, r["value"]) for c in _cohort_keys(f.by, r)],
        cohorts=True,
    )
    alerts = _unsafe_alert_days(
        user, f, Kind.ALERTED, key=cohort, key_columns=columns, cohorts=True
    )
    return {
        "cells": _whole(_keys(sets)),
        "alerts": _whole(_keys(alerts)),
        "high": _whole(_keys(high)),
        "median": {k[0] for k in _keys(median)},
    }


def population_unsafe_cells(
    *,
    user: Any,
    f: PopulationFilter,
    table: str,
    refused: bool | None = None,
    news2_days: set[date] | None = None,
    profile: Profile | None = None,
) -> dict[str, Any]:
    """As differencing.population_unsafe_cells, from the cells (``profile`` only lends its
    memo: _total_cells)."""
    if population_refused(user=user, f=f, profile=profile) if refused is None else refused:
        return {k: EVERYTHING for k in _REFUSED_KINDS}
    if table == "summary":
        return {
            "cells": _keys(_unsafe_cell_days(user, f, Kind.ALL, key=_whole_range)),
            "alerts": _keys(_unsafe_alert_days(user, f, Kind.ALERTED, key=_whole_range)),
        }
    if table == "periods":
        return _unsafe_periods(user, f, news2_days, profile)
    if table == "news2":
        return _unsafe_news2(user, f, profile)
    if table == "bands":
        unsafe = _unsafe_cell_days(
            user,
            f,
            Kind.BAND,
            key=lambda r: [RISK_BANDS[r["value"]].value],
            key_columns=("value",),
            scored=True,
        )
        return {"cells": _whole(_keys(unsafe))}
    if table == "cohorts":
        return _unsafe_cohorts(user, f, profile)
    if table == "acknowledge":
        return {"cells": _whole(_unsafe_acknowledge(user, f))}
    raise KeyError(table)


def _unsafe_acknowledge(user: Any, f: PopulationFilter) -> set[tuple[Any, date]]:
    """(level, day) of every unsafe atom of a level's alerts, its acknowledged ones or the
    others (the column and the alerts minus it), as differencing's acknowledge table."""
    unsafe: set[tuple[Any, date]] = set()
    for kind in (Kind.ALERT, Kind.ACKED, Kind.UNACKED):
        unsafe |= _unsafe_alert_days(
            user, f, kind, key=lambda r: [r["value"]], key_columns=("value",)
        )
    return unsafe
