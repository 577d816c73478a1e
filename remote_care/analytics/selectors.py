"""Population selectors: raw, unsuppressed database aggregates over the scoped, filtered
population (percentile_cont on PostgreSQL, exact histogram percentiles elsewhere); the
dashboard applies suppression."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Case,
    CharField,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import (
    Round,
    TruncDate,
    TruncWeek,
)
from django.utils import timezone

from remote_care.analytics.filters import (
    ALERT_LEVELS,
    NEWS2_RISK,
    PERCENTILES,
    RISK_BANDS,
    Dimension,
    PopulationFilter,
    RiskMeasure,
    _cohort_order,
    _filtered,
    _with_cohort,
    cohort_labels,
    measure_for,
)
from remote_care.models import Alert, Observation, RiskScore
from remote_care.physiology.news2 import ClinicalRisk


class PercentileCont(Aggregate):
    """PostgreSQL's ordered-set aggregate ``percentile_cont(f) WITHIN GROUP (ORDER BY x)``:
    the f-quantile with linear interpolation between neighbouring values."""

    function = "percentile_cont"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, *, fraction: float, **extra: Any) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("fraction must be within [0, 1]")
        extra.setdefault("output_field", FloatField())
        # A literal, not a parameter: it is a float we produced, and a parameter's type
        # would be unknown to percentile_cont.
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


def percentiles_native() -> bool:
    """True where the database has percentile_cont (PostgreSQL)."""
    return connection.vendor == "postgresql"


def percentile_from_counts(counts: Mapping[float, int], fraction: float) -> float | None:
    """The ``fraction`` quantile of a multiset given as value -> count, interpolated exactly
    as percentile_cont does (position fraction * (n - 1) in the sorted values)."""
    items = sorted((v, n) for v, n in counts.items() if n > 0)
    total = sum(n for _, n in items)
    if total == 0:
        return None
    position = fraction * (total - 1)
    low_index = math.floor(position)

    def value_at(index: int) -> float:
        seen = 0
        for value, n in items:
            seen += n
            if index < seen:
                return float(value)
        return float(items[-1][0])

    low = value_at(low_index)
    if position == low_index:
        return low
    return low + (position - low_index) * (value_at(low_index + 1) - low)


class PercentilesCont(Aggregate):
    """``percentile_cont(ARRAY[f1, f2, ...]) WITHIN GROUP (ORDER BY x)``: several quantiles
    from one sort (a float array, in the order of ``fractions``)."""

    function = "percentile_cont"
    name = "PercentilesCont"
    template = (
        "%(function)s(ARRAY[%(fractions)s]::double precision[]) "
        "WITHIN GROUP (ORDER BY %(expressions)s)"
    )

    def __init__(self, expression: Any, *, fractions: tuple[float, ...], **extra: Any) -> None:
        from django.contrib.postgres.fields import ArrayField

        if not fractions or not all(0.0 <= f <= 1.0 for f in fractions):
            raise ValueError("fractions must be within [0, 1]")
        extra.setdefault("output_field", ArrayField(FloatField()))
        # Literals, not parameters, as for PercentileCont.
        super().__init__(
            expression, fractions=", ".join(repr(float(f)) for f in fractions), **extra
        )


def _percentile_aggregates(measure: RiskMeasure, scored: Q) -> dict[str, Aggregate]:
    if not percentiles_native():
        return {}
    return {"percentiles": PercentilesCont(measure.value, fractions=PERCENTILES, filter=scored)}


def _row_percentiles(row: Mapping[str, Any]) -> dict[str, float | None]:
    """The PERCENTILES of an aggregate row from _percentile_aggregates (None when absent)."""
    values = row.get("percentiles") or [None] * len(PERCENTILES)
    return {_pkey(p): v for p, v in zip(PERCENTILES, values, strict=True)}


def _pkey(fraction: float) -> str:
    return f"p{round(fraction * 100)}"


def _histogram_percentiles(
    qs: QuerySet, group: tuple[str, ...], measure: RiskMeasure, scored: Q
) -> dict[tuple, dict[str, float | None]]:
    """Per group, the PERCENTILES from one GROUP BY (group, value) query; the portable path
    for databases without percentile_cont. Needs a discrete measure."""
    if not measure.discrete:
        raise ValueError(f"{measure.label} is continuous: percentiles need PostgreSQL.")
    rows = qs.filter(scored).values(*group, measure.value).annotate(n=Count("pk"))
    histograms: dict[tuple, dict[float, int]] = defaultdict(dict)
    for row in rows:
        histograms[tuple(row[g] for g in group)][row[measure.value]] = row["n"]
    return {
        key: {_pkey(p): percentile_from_counts(counts, p) for p in PERCENTILES}
        for key, counts in histograms.items()
    }


def _scored_q(measure: RiskMeasure, f: PopulationFilter) -> Q:
    q = Q(**{f"{measure.value}__isnull": False})
    if f.complete_only and measure.source == "observation":
        q &= Q(news2_partial=False)
    return q


def population_observations(*, user: Any, f: PopulationFilter) -> QuerySet[Observation]:
    """The observation sets a dashboard aggregates: the user's scope, range and filters."""
    return _filtered(Observation.objects.order_by(), f, user=user, time_field="taken_at")


def population_risk_scores(
    *, user: Any, f: PopulationFilter, measure: RiskMeasure
) -> QuerySet[RiskScore]:
    """The model version's stored risk scores in the range, scope and filters (sets with
    insufficient data left out), with their risk in percent (``risk_pct``, rounded to 0.1
    point)."""
    # "Insufficient data" sets carry no risk: they are not part of any population figure.
    qs = RiskScore.objects.order_by().filter(
        model_version_id=measure.version_id, risk__isnull=False
    )
    qs = _filtered(qs, f, user=user, time_field="taken_at")
    return qs.annotate(risk_pct=Round(F("risk") * 100.0, 1))


def population_alerts(*, user: Any, f: PopulationFilter) -> QuerySet[Alert]:
    """The alerts raised within the range, in the user's scope, with the same filters."""
    return _filtered(Alert.objects.order_by(), f, user=user, time_field="raised_at")


@dataclass
class Summary:
    patients: int
    sets: int
    scored: int
    patient_days: int
    alerts: int
    mean_news2: float | None


@dataclass
class PeriodRow:
    """One day or week: observation sets, NEWS2 statistics, exposure and alerts."""

    period: date
    sets: int = 0
    scored: int = 0
    patients: int = 0
    mean: float | None = None
    percentiles: dict[str, float | None] = field(default_factory=dict)
    high: int = 0
    elevated: int = 0
    patient_days: int = 0
    alerts: dict[str, int] = field(default_factory=dict)
    #: False when the measure has no high-risk cut-off (then no share is shown)
    has_high: bool = True
    #: NEWS2's scored sets and mean, kept when the period's statistics are another measure's
    news2_scored: int = 0
    news2_mean: float | None = None

    @property
    def alert_total(self) -> int:
        return sum(self.alerts.values())

    @property
    def share_high(self) -> float | None:
        return self.high / self.scored if self.scored and self.has_high else None

    @property
    def share_elevated(self) -> float | None:
        return self.elevated / self.scored if self.scored and self.has_high else None

    def alert_rate(self, level: str | None = None) -> float | None:
        """Alerts (of ``level``, or all) per 100 patient-days."""
        n = self.alert_total if level is None else self.alerts.get(level, 0)
        return 100 * n / self.patient_days if self.patient_days else None


@dataclass
class HistogramRow:
    value: int
    sets: int
    patients: int


@dataclass
class BandRow:
    band: str
    sets: int
    patients: int
    share: float | None


@dataclass
class CohortRow:
    key: Any
    label: str
    patients: int = 0
    sets: int = 0
    scored: int = 0
    patient_days: int = 0
    alerts: int = 0
    alert_patients: int = 0
    median: float | None = None
    high: int = 0

    @property
    def alert_rate(self) -> float | None:
        return 100 * self.alerts / self.patient_days if self.patient_days else None

    @property
    def share_high(self) -> float | None:
        return self.high / self.scored if self.scored else None


@dataclass
class AcknowledgeRow:
    level: str
    alerts: int
    patients: int
    acknowledged: int
    median: timedelta | None
    p90: timedelta | None


def _local_date(value: date | datetime) -> date:
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return value.date()
    return value


def _period_start(day: date, period: str) -> date:
    return day - timedelta(days=day.weekday()) if period == "week" else day


def _trunc(time_field: str, period: str) -> Any:
    return TruncWeek(time_field) if period == "week" else TruncDate(time_field)


def _counted(measure: RiskMeasure, f: PopulationFilter, condition: Q | None = None) -> Q | None:
    # Conditions on columns the covering index holds (news2_total, news2_partial), so the
    # counts are answered from the index; COUNT(column) already skips unscored sets.
    q = Q(news2_partial=False) if f.complete_only else Q()
    if condition is not None:
        q &= condition
    return q or None


def _news2_aggregates(measure: RiskMeasure, f: PopulationFilter) -> dict[str, Aggregate]:
    """Sets, scored sets, mean, high and elevated counts: one pass, no heap column read
    (COUNT(*) rather than COUNT(id), which is not in the covering index)."""
    return {
        "sets": Count("*"),
        "scored": Count(measure.value, filter=_counted(measure, f)),
        "mean": Avg(measure.value, filter=_counted(measure, f)),
        "high": Count(measure.value, filter=_counted(measure, f, measure.high)),
        "elevated": Count(measure.value, filter=_counted(measure, f, measure.elevated)),
    }


def patient_days_by_day(*, user: Any, f: PopulationFilter) -> dict[date, int]:
    """Patient-days per local day: distinct patients with a set that day."""
    rows = (
        population_observations(user=user, f=f)
        .annotate(day=TruncDate("taken_at"))
        .values("day")
        .annotate(n=Count("patient", distinct=True))
    )
    return {_local_date(r["day"]): r["n"] for r in rows}


def population_summary(
    *, user: Any, f: PopulationFilter, periods: list[PeriodRow] | None = None
) -> Summary:
    """Totals over the whole range: patients, sets, patient-days, alerts, mean NEWS2. Given
    the range's ``periods`` it adds them up and only counts distinct patients (one query)."""
    if periods is None:
        periods = population_periods(user=user, f=f)
    patients = population_observations(user=user, f=f).values("patient").distinct().count()
    scored = sum(p.news2_scored for p in periods)
    return Summary(
        patients=patients,
        sets=sum(p.sets for p in periods),
        scored=scored,
        patient_days=sum(p.patient_days for p in periods),
        alerts=sum(p.alert_total for p in periods),
        mean_news2=(sum(p.news2_mean * p.news2_scored for p in periods if p.news2_scored) / scored)
        if scored
        else None,
    )


def _patient_days_by(obs: QuerySet, group: tuple[str, ...]) -> dict[tuple, int]:
    """Patient-days per group: distinct patients per (group, local day), summed per group;
    Python sums aggregate rows (groups x days), never observations."""
    rows = obs.annotate(day=TruncDate("taken_at")).values(*group, "day")
    rows = rows.annotate(n=Count("patient", distinct=True))
    days: dict[tuple, int] = defaultdict(int)
    for row in rows:
        days[tuple(row[g] for g in group)] += row["n"]
    return dict(days)


def _model_risk_stats(
    periods: dict[date, PeriodRow], *, user: Any, f: PopulationFilter, measure: RiskMeasure
) -> None:
    """Replace the periods' risk statistics by the model's: scores, mean, percentiles and
    high/elevated counts per period from the version's RiskScore rows (one or two queries)."""
    scores = population_risk_scores(user=user, f=f, measure=measure)
    bucket = _trunc("taken_at", f.period)
    cuts = {
        name: Count("risk", filter=q)
        for name, q in (("high", measure.high), ("elevated", measure.elevated))
        if q is not None
    }
    rows = (
        scores.annotate(bucket=bucket)
        .values("bucket")
        .annotate(
            scored=Count("*"),
            mean=Avg(measure.value),
            **cuts,
            **_percentile_aggregates(measure, Q()),
        )
    )
    for p in periods.values():
        p.scored, p.mean, p.percentiles = 0, None, {}
        p.high = p.elevated = 0
        p.has_high = measure.high is not None
    for row in rows:
        key = _local_date(row["bucket"])
        p = periods.setdefault(key, PeriodRow(period=key, has_high=measure.high is not None))
        p.scored, p.mean = row["scored"], row["mean"]
        p.high, p.elevated = row.get("high", 0), row.get("elevated", 0)
        p.percentiles = _row_percentiles(row)
    if not percentiles_native():
        portable = _histogram_percentiles(scores.annotate(bucket=bucket), ("bucket",), measure, Q())
        for (bucket_value,), values in portable.items():
            periods[_local_date(bucket_value)].percentiles = values


def population_periods(
    *,
    user: Any,
    f: PopulationFilter,
    measure: RiskMeasure | None = None,
    day_patients: Mapping[date, int] | None = None,
) -> list[PeriodRow]:
    """Per day or week: sets, patients, mean and percentiles of ``measure`` (default: the
    filter's), high/elevated counts, patient-days and alerts by level (two queries per day,
    three per week, one or two more for the model's risk, whatever the data size)."""
    if measure is None:
        measure = measure_for(f.measure)
    model_measure = measure if measure.source == "model" else None
    if model_measure is not None:
        measure = NEWS2_RISK  # sets, patients and exposure still come from the observations
    obs = population_observations(user=user, f=f)
    bucket = _trunc("taken_at", f.period)
    rows = (
        obs.annotate(bucket=bucket)
        .values("bucket")
        .annotate(
            patients=Count("patient", distinct=True),
            **_news2_aggregates(measure, f),
            # NEWS2 percentiles only when NEWS2 is the measure charted (they cost a sort).
            **({} if model_measure else _percentile_aggregates(measure, _scored_q(measure, f))),
        )
    )
    periods: dict[date, PeriodRow] = {}
    for row in rows:
        key = _local_date(row["bucket"])
        periods[key] = PeriodRow(
            period=key,
            sets=row["sets"],
            scored=row["scored"],
            patients=row["patients"],
            mean=row["mean"],
            news2_scored=row["scored"],
            news2_mean=row["mean"],
            percentiles=_row_percentiles(row),
            high=row["high"],
            elevated=row["elevated"],
        )
    if model_measure is not None:
        _model_risk_stats(periods, user=user, f=f, measure=model_measure)
    elif not percentiles_native():
        portable = _histogram_percentiles(
            obs.annotate(bucket=bucket), ("bucket",), measure, _scored_q(measure, f)
        )
        for (bucket_value,), values in portable.items():
            periods[_local_date(bucket_value)].percentiles = values
    if day_patients is None:
        # Per day, the distinct patients of the day are its patient-days: no second scan.
        day_patients = (
            {k: p.patients for k, p in periods.items()}
            if f.period == "day"
            else patient_days_by_day(user=user, f=f)
        )
    for day, n in day_patients.items():
        key = _period_start(day, f.period)
        periods.setdefault(key, PeriodRow(period=key)).patient_days += n
    alert_rows = (
        population_alerts(user=user, f=f)
        .annotate(bucket=_trunc("raised_at", f.period))
        .values("bucket", "level")
        .annotate(n=Count("*"))
    )
    for row in alert_rows:
        key = _local_date(row["bucket"])
        periods.setdefault(key, PeriodRow(period=key)).alerts[row["level"]] = row["n"]
    return [periods[k] for k in sorted(periods)]


def news2_histogram(*, user: Any, f: PopulationFilter) -> list[HistogramRow]:
    """Scored sets and distinct patients per NEWS2 total, lowest total first."""
    rows = (
        population_observations(user=user, f=f)
        .filter(_scored_q(NEWS2_RISK, f))
        .values("news2_total")
        .annotate(sets=Count("*"), patients=Count("patient", distinct=True))
        .order_by("news2_total")
    )
    return [HistogramRow(r["news2_total"], r["sets"], r["patients"]) for r in rows]


def _band_by_total() -> Case:
    # RCP Chart 2 aggregate thresholds; totals 3-4 are split off because only they can be
    # low-medium (a single parameter scoring 3 needs a total of at least 3).
    return Case(
        When(news2_total__gte=7, then=Value(ClinicalRisk.HIGH.value)),
        When(news2_total__gte=5, then=Value(ClinicalRisk.MEDIUM.value)),
        When(news2_total__gte=3, then=Value("3-4")),
        default=Value(ClinicalRisk.LOW.value),
        output_field=CharField(),
    )


#: Low-medium sets: total 3-4 with one parameter scoring 3 (news2.risk_for). This exact
#: condition is the predicate of the partial index remote_care_obs_red_score, so PostgreSQL
#: answers it from that small index instead of reading every row's JSON.
RED_SCORE_BELOW_FIVE = Q(news2_total__gte=3, news2_total__lt=5, news2__any_single_three=True)


def news2_bands(*, user: Any, f: PopulationFilter) -> list[BandRow]:
    """Scored sets per clinical-risk band and their share (two index-only queries). Patients
    per band are exact except for 'low', where they are a lower bound (patients with a set
    scoring 0-2): used only to decide suppression, which that keeps conservative."""
    scored = population_observations(user=user, f=f).filter(_scored_q(NEWS2_RISK, f))
    rows = {
        r["band"]: r
        for r in scored.annotate(band=_band_by_total())
        .values("band")
        .annotate(sets=Count("*"), patients=Count("patient", distinct=True))
    }
    red = scored.filter(RED_SCORE_BELOW_FIVE).aggregate(
        sets=Count("*"), patients=Count("patient", distinct=True)
    )

    def of(key: str) -> tuple[int, int]:
        row = rows.get(key, {"sets": 0, "patients": 0})
        return row["sets"], row["patients"]

    (low_sets, low_patients), (mid_sets, _) = of(ClinicalRisk.LOW.value), of("3-4")
    counts = {
        ClinicalRisk.LOW: (low_sets + mid_sets - red["sets"], low_patients),
        ClinicalRisk.LOW_MEDIUM: (red["sets"], red["patients"]),
        ClinicalRisk.MEDIUM: of(ClinicalRisk.MEDIUM.value),
        ClinicalRisk.HIGH: of(ClinicalRisk.HIGH.value),
    }
    total = sum(r["sets"] for r in rows.values())
    return [
        BandRow(
            band=band.value,
            sets=counts[band][0],
            patients=counts[band][1],
            share=counts[band][0] / total if total else None,
        )
        for band in RISK_BANDS
    ]


def cohort_comparison(*, user: Any, f: PopulationFilter) -> list[CohortRow]:
    """Per cohort of ``f.by``: patients, sets, patient-days, alerts, alert rate, median NEWS2
    and share of high-risk sets."""
    obs = population_observations(user=user, f=f)
    alerts = population_alerts(user=user, f=f)
    scored = _scored_q(NEWS2_RISK, f)
    group: tuple[str, ...] = ()
    if f.by != Dimension.ALL:
        obs = _with_cohort(obs, f, time_field="taken_at")
        alerts = _with_cohort(alerts, f, time_field="raised_at")
        group = ("cohort",)
    aggregates: dict[str, Any] = {
        "patients": Count("patient", distinct=True),
        **_news2_aggregates(NEWS2_RISK, f),
    }
    if percentiles_native():
        aggregates["median"] = PercentileCont(NEWS2_RISK.value, fraction=0.5, filter=scored)
    alert_aggregates = {"n": Count("*"), "patients": Count("patient", distinct=True)}
    if group:
        obs_rows = list(obs.values(*group).annotate(**aggregates))
        alert_rows = list(alerts.values(*group).annotate(**alert_aggregates))
    else:
        obs_rows = [obs.aggregate(**aggregates)]
        alert_rows = [alerts.aggregate(**alert_aggregates)]

    def key_of(row: Mapping[str, Any]) -> Any:
        return row["cohort"] if group else "all"

    cohorts: dict[Any, CohortRow] = {}
    for row in obs_rows:
        if not row["sets"]:
            continue
        cohorts[key_of(row)] = CohortRow(
            key=key_of(row),
            label="",
            patients=row["patients"],
            sets=row["sets"],
            scored=row["scored"],
            high=row["high"],
            median=row.get("median"),
        )
    if not percentiles_native():
        portable = _histogram_percentiles(obs, group, NEWS2_RISK, scored)
        for key, values in portable.items():
            cohorts[key[0] if group else "all"].median = values["p50"]
    for key, n in _patient_days_by(obs, group).items():
        cohorts[key[0] if group else "all"].patient_days = n
    for row in alert_rows:
        if row["n"] and key_of(row) in cohorts:
            cohorts[key_of(row)].alerts = row["n"]
            cohorts[key_of(row)].alert_patients = row["patients"]
    labels = cohort_labels(f.by, cohorts)
    for key, row in cohorts.items():
        row.label = labels[key]
    return [cohorts[k] for k in sorted(cohorts, key=lambda k: _cohort_order(f.by, k))]


def _ack_delay() -> ExpressionWrapper:
    return ExpressionWrapper(F("acknowledged_at") - F("raised_at"), output_field=DurationField())


def _ack_delay_us() -> Func:
    """The acknowledge delay in microseconds, exact, as a double (PostgreSQL): percentile_cont
    then interpolates as percentile_from_counts does over the roll-ups' delays."""
    return Func(
        _ack_delay(),
        template="(extract(epoch FROM %(expressions)s) * 1000000)::double precision",
        output_field=FloatField(),
    )


def delay_from_us(value: float | None) -> timedelta | None:
    """A percentile of delays in (possibly fractional) microseconds as a timedelta (rounded
    to the microsecond, half to even): the one conversion every path uses."""
    return None if value is None else timedelta(microseconds=value)


def acknowledge_times(*, user: Any, f: PopulationFilter) -> list[AcknowledgeRow]:
    """Per alert level: alerts, patients, how many were acknowledged, and the median and 90th
    percentile time from raising to acknowledging (percentile_cont over the delays in
    microseconds; the roll-ups' delays interpolate alike)."""
    alerts = population_alerts(user=user, f=f)
    acked = Q(acknowledged_at__isnull=False)
    aggregates: dict[str, Any] = {
        "n": Count("pk"),
        "patients": Count("patient", distinct=True),
        "acknowledged": Count("pk", filter=acked),
    }
    if percentiles_native():
        for p, name in ((0.5, "median"), (0.9, "p90")):
            aggregates[name] = PercentileCont(_ack_delay_us(), fraction=p, filter=acked)
    rows = {r["level"]: r for r in alerts.values("level").annotate(**aggregates)}
    result = []
    for level in ALERT_LEVELS:
        row = rows.get(level)
        if not row:
            continue
        median, p90 = delay_from_us(row.get("median")), delay_from_us(row.get("p90"))
        if not percentiles_native() and row["acknowledged"]:
            median, p90 = (
                _offset_percentile(alerts.filter(acked, level=level), row["acknowledged"], p)
                for p in (0.5, 0.9)
            )
        result.append(
            AcknowledgeRow(level, row["n"], row["patients"], row["acknowledged"], median, p90)
        )
    return result


def _offset_percentile(alerts: QuerySet, n: int, fraction: float) -> timedelta | None:
    """percentile_cont of the acknowledge delay without it: the two neighbouring values by
    ORDER BY ... OFFSET (one query) and linear interpolation in microseconds, as
    percentile_from_counts."""
    position = fraction * (n - 1)
    low_index = math.floor(position)
    values = [
        float(v // timedelta(microseconds=1))
        for v in alerts.annotate(delay=_ack_delay())
        .order_by("delay")
        .values_list("delay", flat=True)[low_index : low_index + 2]
    ]
    low = values[0]
    if position == low_index or len(values) == 1:
        return delay_from_us(low)
    return delay_from_us(low + (position - low_index) * (values[1] - low))
