"""Population analytics over monitored patients: alert rates, NEWS2 distributions, risk over
time, cohort comparisons and time to acknowledge alerts.

Every number is a database aggregate (GROUP BY with Count/Avg, ``percentile_cont`` on
PostgreSQL); Python only ever loops over aggregate rows (a few per day, cohort or NEWS2 value),
never over observations, so a dashboard stays fast at millions of observation sets. The
indexes these queries use are in migration 0003_population_indexes.

Definitions (shown on the page):
- A *patient-day* is one patient with at least one observation set on one calendar day in the
  site's time zone; alert rates are alerts per 100 patient-days.
- NEWS2 statistics use scored sets (``news2_total`` present); partial sets (a parameter
  missing, so the total is a lower bound) are included unless ``complete_only``.
- Clinical-risk bands are RCP NEWS2 Chart 2, as ``remote_care.news2.risk_for``: 7+ high, 5-6
  medium, otherwise low-medium when one parameter scored 3, else low.
- Age is the patient's age on the day of each observation set (or alert), so a patient whose
  birthday crosses a band boundary inside the range counts in both bands, each for their own
  days. Not the age at the end of the range: two ranges with different ends would put that
  patient in different bands, and subtracting them would single the patient out. A cohort by
  care team uses the patient's responsible clinicians, so a patient with two counts in both.

Small-cell suppression (see :func:`suppress`): on the dashboard and in its exports no cell
aggregates fewer than ``SMALL_CELL`` patients, and no count between 1 and ``SMALL_CELL - 1`` is
shown, so an aggregate cannot single out a patient.

Differencing (see :func:`population_unsafe_cells`): the filters (sex, age band, care team,
SpO2 scale, complete sets only) and the cohort dimension cut the population into *atoms*, one
per combination of the values of the attributes a request constrains. Two filtered tables can
be subtracted (everyone minus sex=F is sex=M plus any other sex), and any combination of
requests is a sum of atoms. So a cell (a day, a NEWS2 total, a cohort, an alert level) is
shown only when every atom of the attributes the request constrains has 0 or at least
``SMALL_CELL`` patients in that cell; whatever an attacker subtracts is then a union of such
atoms. A request whose whole range has an atom of 1 to ``SMALL_CELL - 1`` patients is refused
entirely (every table suppressed).

Date ranges (see :func:`_unsafe_for`): any two ranges can be subtracted too, so the elementary
cell is one calendar day. (1) Every cell is checked per day: a cell of a range-level table
(summary, NEWS2 histogram, bands, cohorts, time to acknowledge; a week of the per-period
table) is shown only when, on EVERY day of the range, every atom in it has 0 or at least
``SMALL_CELL`` patients. (2) Every published count is additive over days: observation sets,
alerts and patient-days (distinct patients per day, summed), never distinct patients over
several days, whose difference between nested ranges (patients seen on the added days and
not before) could be one patient even when every day is safe. Any difference of ranges and
filters is then a sum over (day, atom) cells that each hold none or at least ``SMALL_CELL``
patients, so its group of patients is empty or has at least ``SMALL_CELL``.

Complementary suppression (see :func:`_whole`, :func:`hidden_cohorts`): the rows of a table
add up to a figure shown elsewhere (the histogram, bands and cohorts to the sets, alert levels
to the alerts, a period's levels to its alert total, high-risk and other sets to the sets),
so hiding only the unsafe rows lets "total minus shown rows" recover them. The hidden rows
must therefore hold none or at least ``SMALL_CELL`` patients in every atom on every day, and
the choice must depend on the day alone (two ranges that hid different complements of the
same day could be combined). Both hold for one rule: one unsafe cell on one day hides every
row of the table (or every level of the period) for every range containing that day. Then
what any set of requests publishes is a linear combination of whole safe (day, atom) tables
and of totals over hidden ones, and no cell of 1 to ``SMALL_CELL - 1`` patients is pinned
within fewer than ``SMALL_CELL`` values; tests/remote_care/test_analytics_differencing.py
solves every published count of every range as linear programmes to check it.

Means, percentiles and medians (see the "stats" and "median" cells): a mean times its shown
set count is the sum of the sets' NEWS2 totals, one more linear equation on the histogram's
cells, and a percentile reads the totals of a few sets. So a statistic of a group over some
days is shown only when that group's NEWS2 distribution could be: on every one of its days,
every (atom, NEWS2 total) cell has 0 or at least ``SMALL_CELL`` patients. It is then a
function of cells that may all be published, and adds nothing to them. The range's mean is
hidden with the histogram; a period's mean and percentiles when one of its days has such an
unsafe cell (the period, not the range: a period's statistics are only its own days'); a
cohort's median when a (cohort, atom, total) cell is unsafe on a day. The deterioration
model's risk has no published distribution: its mean and percentiles need the period's
scores to have safe atoms on every day. The differencing test models every mean as such an
equation and counts a percentile that reads a total of 1 to ``SMALL_CELL - 1`` patients on
a day as exposing.

Care-team cohorts overlap (a patient with two responsible clinicians is in both, so the
cohorts' sum minus the total counts the patients in two). Their atoms therefore include the
patient's whole set of responsible clinicians: every region of the cohorts' Venn diagram
must be safe on every day, else the whole table is hidden. This is shown by a targeted test
(two teams, two patients in both); the LP test does not model overlapping cohorts, so the
rule is deliberately conservative.

The care-team *filter* overlaps too, and takes any member of the team, not only the
responsible clinician: team A + team B + team C - everyone counts the patients in two teams,
and B's filter minus B's cohort the patients B is a member (not responsible) of. So when a
request filters by care team, its team atoms are the regions of the whole care teams' Venn
diagram, roles included: patients with the same members, responsible or not
(:func:`_care_team_set`). Every region, in or out of the chosen team, must be safe, since
the patients in none of several chosen teams are one subtraction away as well; then any
combination of team-filtered, cohort and unfiltered requests is a sum of regions. The price:
one region of 1 to 4 patients anywhere in the scope refuses every team-filtered request over
a range that includes them (and hides a table on a day that has them).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Case,
    CharField,
    Count,
    DateField,
    DurationField,
    ExpressionWrapper,
    F,
    FilteredRelation,
    FloatField,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import (
    Cast,
    Concat,
    Round,
    TruncDate,
    TruncWeek,
)
from django.utils import timezone

from medai_site.core.roles import Role, has_role
from medai_site.patients.models import CareTeamMembership, Patient
from medai_site.patients.selectors import patient_list
from remote_care.models import Alert, Observation, RiskScore
from remote_care.physiology.news2 import ClinicalRisk

#: Cells that aggregate fewer patients than this, and counts below it, are suppressed.
SMALL_CELL = 5
#: The widest range a dashboard may ask for (daily buckets stay a readable chart).
MAX_RANGE_DAYS = 366
PERIODS = ("day", "week")
PERCENTILES = (0.25, 0.5, 0.75, 0.9)

#: (label, lowest age, highest age or None): age in whole years when the set was taken.
AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("0-17", 0, 17),
    ("18-39", 18, 39),
    ("40-64", 40, 64),
    ("65-79", 65, 79),
    ("80+", 80, None),
)
ALERT_LEVELS = tuple(Alert.Level.values)
RISK_BANDS = (ClinicalRisk.LOW, ClinicalRisk.LOW_MEDIUM, ClinicalRisk.MEDIUM, ClinicalRisk.HIGH)


class Dimension(StrEnum):
    """What the cohort comparison groups patients by."""

    ALL = "all"
    SEX = "sex"
    AGE = "age"
    TEAM = "team"
    SCALE = "scale"


DIMENSION_LABELS = {
    Dimension.ALL: "All patients",
    Dimension.SEX: "Sex",
    Dimension.AGE: "Age band (on the day)",
    Dimension.TEAM: "Responsible clinician",
    Dimension.SCALE: "NEWS2 SpO2 scale",
}


@dataclass(frozen=True)
class RiskMeasure:
    """A risk the dashboard charts over time: NEWS2 (a column of every observation set) or
    the deterioration model's risk (``source="model"``: the ``RiskScore`` rows of one model
    version). ``discrete`` measures (integers, or the model's risk rounded to 0.1 percentage
    point) get exact percentiles without ``percentile_cont`` (SQLite) from a histogram.
    ``high``/``elevated`` are None when the measure has no such cut-off."""

    key: str
    label: str
    value: str
    high: Q | None
    elevated: Q | None
    discrete: bool = True
    source: str = "observation"
    version_id: int | None = None
    high_label: str = "High-risk sets (%)"
    description: str = ""


NEWS2_RISK = RiskMeasure(
    key="news2",
    label="NEWS2",
    value="news2_total",
    # RCP Chart 2: aggregate 7+ is high clinical risk, 5-6 medium (urgent response).
    high=Q(news2_total__gte=7),
    elevated=Q(news2_total__gte=5),
    description="NEWS2 per observation set; high risk is an aggregate of 7 or more (RCP Chart 2).",
)
RISK_MEASURES: Mapping[str, RiskMeasure] = {NEWS2_RISK.key: NEWS2_RISK}
MODEL_RISK_KEY = "model"
MEASURE_CHOICES = (
    (NEWS2_RISK.key, "NEWS2"),
    (MODEL_RISK_KEY, "Deterioration model risk (version in service)"),
)


class NoModelRisk(LookupError):
    """The model-risk measure was asked for but no deterioration model is in service."""


def model_risk_measure() -> RiskMeasure:
    """The risk of the deterioration model version in service, in percent (rounded to 0.1
    point), from its stored scores; only one version's scores are ever mixed. Its elevated /
    high cut-offs are the version's operating points (the risks above which the top 20 % / 10 %
    of its validation stays lie, ``alert_thresholds`` in the version's metrics); a version
    registered without them has none. Raises NoModelRisk when no version is active."""
    from medai_site.registry.selectors import model_version_active
    from remote_care.risk.services import RISK_TASK, version_cut_offs

    version = model_version_active(task=RISK_TASK)
    if version is None:
        raise NoModelRisk("No deterioration model is in service, so there is no model risk.")
    cuts = version_cut_offs(version) or {}
    high, elevated = cuts.get("high"), cuts.get("elevated")
    description = (
        f"Model risk: calibrated risk of in-hospital death from deterioration model "
        f"{version} (in service), as stored for each scored observation set."
    )
    if high is not None:
        description += (
            f" High: {100 * high:.1f} % or more (the risk above which its top 10 % of "
            f"validation stays lie); elevated: {100 * (elevated or high):.1f} % or more (top 20 %)."
        )
    return RiskMeasure(
        key=MODEL_RISK_KEY,
        label="Model risk (%)",
        value="risk_pct",
        high=None if high is None else Q(risk__gte=float(high)),
        elevated=None if elevated is None else Q(risk__gte=float(elevated)),
        source="model",
        version_id=version.pk,
        high_label="Scores in the model's top-10 % band (%)",
        description=description,
    )


def measure_for(key: str) -> RiskMeasure:
    """The measure a filter names ("news2" or "model"); NoModelRisk as model_risk_measure."""
    if key == MODEL_RISK_KEY:
        return model_risk_measure()
    return RISK_MEASURES[key]


@dataclass(frozen=True)
class PopulationFilter:
    """Which observations and alerts a dashboard aggregates; dates are inclusive, in the
    site's time zone. Validate with ``remote_care.analytics_forms``."""

    start: date
    end: date
    period: str = "day"
    by: Dimension = Dimension.ALL
    sex: str = ""
    age_band: str = ""
    team: int | None = None
    spo2_scale: int | None = None
    complete_only: bool = False
    measure: str = NEWS2_RISK.key

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) as aware datetimes: local midnight of start, of the day after end."""
        tz = timezone.get_current_timezone()
        return (
            timezone.make_aware(datetime.combine(self.start, time.min), tz),
            timezone.make_aware(datetime.combine(self.end + timedelta(days=1), time.min), tz),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for the audit trail."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "period": self.period,
            "by": str(self.by),
            "sex": self.sex,
            "age_band": self.age_band,
            "team": self.team,
            "spo2_scale": self.spo2_scale,
            "complete_only": self.complete_only,
            "measure": self.measure,
        }


# --------------------------------------------------------------------------------------------
# Scope, filters and cohort keys
# --------------------------------------------------------------------------------------------


def population_sees_all(*, user: Any) -> bool:
    """Researchers and model admins aggregate over every monitored patient; anyone else
    (clinicians) over their own care teams' patients only."""
    return has_role(user, Role.RESEARCHER, Role.MODEL_ADMIN)


def _scoped(qs: QuerySet, *, user: Any) -> QuerySet:
    if population_sees_all(user=user):
        return qs
    if has_role(user, Role.CLINICIAN):
        return qs.filter(patient__in=patient_list(user=user).values("pk"))
    return qs.none()


class _YearsBefore(Func):
    """The date ``years`` years before a date expression (29 February -> 28th on PostgreSQL),
    so an age band is a birth-date range per row's day."""

    template = "CAST((%(expressions)s - make_interval(years => %(years)s)) AS date)"
    output_field = DateField()

    def __init__(self, expression: Any, *, years: int) -> None:
        # A literal: an int we produced, as make_interval wants it.
        super().__init__(expression, years=int(years))

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler, connection, template="date(%(expressions)s, '-%(years)s years')", **extra
        )


def _age_band_q(label: str, time_field: str) -> Q:
    """Rows whose patient's age on the row's local day (of ``time_field``) is within the
    band ``label``."""
    day = TruncDate(time_field)
    for name, low, high in AGE_BANDS:
        if name == label:
            q = Q(patient__birth_date__lte=_YearsBefore(day, years=low))
            if high is not None:
                q &= Q(patient__birth_date__gt=_YearsBefore(day, years=high + 1))
            return q
    raise ValueError(f"Unknown age band {label!r}.")


def _filtered(qs: QuerySet, f: PopulationFilter, *, user: Any, time_field: str) -> QuerySet:
    start, end = f.bounds()
    qs = _scoped(qs, user=user).filter(**{f"{time_field}__gte": start, f"{time_field}__lt": end})
    if f.sex:
        qs = qs.filter(patient__sex=f.sex)
    if f.spo2_scale:
        qs = qs.filter(patient__monitoring__spo2_scale=f.spo2_scale)
    if f.team:
        qs = qs.filter(
            patient__in=CareTeamMembership.objects.filter(user_id=f.team).values("patient_id")
        )
    if f.age_band:
        qs = qs.filter(_age_band_q(f.age_band, time_field))
    return qs


def _with_cohort(qs: QuerySet, f: PopulationFilter, *, time_field: str) -> QuerySet:
    """``qs`` with a ``cohort`` annotation holding the group key of ``f.by`` (not for ALL);
    ages on the local day of ``time_field``."""
    by = f.by
    if by == Dimension.SEX:
        return qs.annotate(cohort=F("patient__sex"))
    if by == Dimension.SCALE:
        return qs.annotate(cohort=F("patient__monitoring__spo2_scale"))
    if by == Dimension.TEAM:
        return qs.annotate(
            responsible=FilteredRelation(
                "patient__memberships",
                condition=Q(patient__memberships__role=CareTeamMembership.Role.RESPONSIBLE),
            ),
            cohort=F("responsible__user_id"),
        )
    if by == Dimension.AGE:
        return qs.annotate(cohort=_age_band_case(time_field))
    raise ValueError(f"No cohort key for {by!r}.")


def _age_band_case(time_field: str) -> Case:
    """The age band (AGE_BANDS label) of the patient's age on the row's local day."""
    day = TruncDate(time_field)
    whens = [
        When(patient__birth_date__gt=_YearsBefore(day, years=high + 1), then=Value(name))
        for name, _low, high in AGE_BANDS
        if high is not None
    ]
    return Case(*whens, default=Value(AGE_BANDS[-1][0]), output_field=CharField())


def cohort_labels(by: Dimension, keys: Iterable[Any]) -> dict[Any, str]:
    """Display names of cohort keys (one query for care teams, none otherwise)."""
    keys = list(keys)
    if by == Dimension.SEX:
        names = dict(Patient.Sex.choices)
        return {k: names.get(k, str(k)) for k in keys}
    if by == Dimension.SCALE:
        return {k: ("Not monitored" if k is None else f"Scale {k}") for k in keys}
    if by == Dimension.AGE:
        return {k: str(k) for k in keys}
    if by == Dimension.TEAM:
        users = get_user_model().objects.filter(pk__in=[k for k in keys if k is not None])
        names = {u.pk: (u.get_full_name() or u.get_username()) for u in users}
        return {k: ("No responsible clinician" if k is None else names.get(k, "?")) for k in keys}
    return {k: "All patients" for k in keys}


def _cohort_order(by: Dimension, key: Any) -> tuple:
    if by == Dimension.AGE:
        order = [name for name, _, _ in AGE_BANDS]
        return (order.index(key) if key in order else -1, "")
    if by == Dimension.SEX:
        return (list(Patient.Sex.values).index(key) if key in Patient.Sex.values else 99, "")
    return (key is None, str(key))


# --------------------------------------------------------------------------------------------
# Percentiles: percentile_cont on PostgreSQL, exact histogram percentiles elsewhere
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Selectors (raw, unsuppressed numbers; the dashboard applies suppression)
# --------------------------------------------------------------------------------------------


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


def acknowledge_times(*, user: Any, f: PopulationFilter) -> list[AcknowledgeRow]:
    """Per alert level: alerts, patients, how many were acknowledged, and the median and 90th
    percentile time from raising to acknowledging."""
    alerts = population_alerts(user=user, f=f)
    acked = Q(acknowledged_at__isnull=False)
    aggregates: dict[str, Any] = {
        "n": Count("pk"),
        "patients": Count("patient", distinct=True),
        "acknowledged": Count("pk", filter=acked),
    }
    if percentiles_native():
        for p, name in ((0.5, "median"), (0.9, "p90")):
            aggregates[name] = PercentileCont(
                _ack_delay(), fraction=p, filter=acked, output_field=DurationField()
            )
    rows = {r["level"]: r for r in alerts.values("level").annotate(**aggregates)}
    result = []
    for level in ALERT_LEVELS:
        row = rows.get(level)
        if not row:
            continue
        median, p90 = row.get("median"), row.get("p90")
        if not percentiles_native() and row["acknowledged"]:
            median, p90 = (
                _offset_percentile(alerts.filter(acked, level=level), row["acknowledged"], p)
                for p in (0.5, 0.9)
            )
        result.append(
            AcknowledgeRow(level, row["n"], row["patients"], row["acknowledged"], median, p90)
        )
    return result


def _offset_percentile(alerts: QuerySet, n: int, fraction: float) -> timedelta:
    """percentile_cont of the acknowledge delay without it: the two neighbouring values by
    ORDER BY ... OFFSET (one query) and linear interpolation."""
    position = fraction * (n - 1)
    low_index = math.floor(position)
    values = list(
        alerts.annotate(delay=_ack_delay())
        .order_by("delay")
        .values_list("delay", flat=True)[low_index : low_index + 2]
    )
    low = values[0]
    if position == low_index or len(values) == 1:
        return low
    return low + (values[1] - low) * (position - low_index)


# --------------------------------------------------------------------------------------------
# Differencing: atoms of the constrained attributes per cell
# --------------------------------------------------------------------------------------------


class _Everything(frozenset):
    """The unsafe cells of a refused request: every key is in it."""

    def __contains__(self, key: object) -> bool:
        return True


EVERYTHING: frozenset = _Everything()


def _unconstrained(f: PopulationFilter) -> PopulationFilter:
    return replace(f, sex="", age_band="", team=None, spo2_scale=None)


class _GroupConcat(Aggregate):
    """SQLite's group_concat: the values of a group joined by commas."""

    function = "GROUP_CONCAT"
    output_field = CharField()


def _responsible_set() -> Case:
    """For a patient with two or more responsible clinicians, their user ids in ascending
    order as one string, else NULL: with the cohort key, the region of the care-team
    cohorts' Venn diagram the patient is in (a patient with two is in both cohorts)."""
    responsible = CareTeamMembership.objects.filter(role=CareTeamMembership.Role.RESPONSIBLE)
    # Uncorrelated, so evaluated once (a hashed subplan on PostgreSQL): the per-row
    # subquery below then runs for the few patients in several cohorts only.
    several = responsible.order_by().values("patient_id").annotate(n=Count("*")).filter(n__gt=1)
    members = responsible.filter(patient_id=OuterRef("patient_id"))
    user_id = Cast("user_id", CharField())
    if connection.vendor == "postgresql":
        from django.contrib.postgres.aggregates import StringAgg

        ids: Aggregate = StringAgg(user_id, delimiter=",", order_by="user_id")
    else:
        # group_concat takes no ORDER BY before SQLite 3.44; the unique (patient, user) index
        # that the lookup by patient walks hands it the ids in ascending order.
        ids = _GroupConcat(user_id)
    ids_of = Subquery(members.order_by().values("patient_id").annotate(ids=ids).values("ids")[:1])
    return Case(
        When(patient_id__in=several.values("patient_id"), then=ids_of),
        default=Value(None, output_field=CharField()),
        output_field=CharField(),
    )


def _member_label(prefix: str = "") -> Concat:
    """One care-team membership as text: the user id, with "r" for the responsible role."""
    return Concat(
        Cast(f"{prefix}user_id", CharField()),
        Case(
            When(**{f"{prefix}role": CareTeamMembership.Role.RESPONSIBLE}, then=Value("r")),
            default=Value(""),
            output_field=CharField(),
        ),
        output_field=CharField(),
    )


def _care_team_set() -> Case:
    """The patient's whole care team as one string, its members' user ids in ascending
    order, each marked "r" when responsible ("12r,31"; NULL without a care team): the
    region of the care-team Venn diagram the patient is in, for the team filter (any member)
    and the cohorts by responsible clinician alike. Rows of patients with several members
    are repeated by the join; every atom count is of distinct patients, so that is harmless."""
    memberships = CareTeamMembership.objects.order_by()
    # Uncorrelated, so evaluated once (a hashed subplan on PostgreSQL); the per-row subquery
    # below runs for the patients with several members only, the others read the join.
    several = memberships.values("patient_id").annotate(n=Count("*")).filter(n__gt=1)
    members = memberships.filter(patient_id=OuterRef("patient_id"))
    if connection.vendor == "postgresql":
        from django.contrib.postgres.aggregates import StringAgg

        ids: Aggregate = StringAgg(_member_label(), delimiter=",", order_by="user_id")
    else:
        # As in _responsible_set: the unique (patient, user) index hands them in order.
        ids = _GroupConcat(_member_label())
    ids_of = Subquery(members.values("patient_id").annotate(ids=ids).values("ids")[:1])
    return Case(
        When(patient_id__in=several.values("patient_id"), then=ids_of),
        default=_member_label("patient__memberships__"),
        output_field=CharField(),
    )


def _atom_fields(
    f: PopulationFilter, *, observations: bool, cohorts: bool = False
) -> dict[str, Any]:
    """One annotation per attribute ``f`` constrains, whose values cut the population into
    the atoms that requests differing in that attribute can be subtracted down to. With
    ``cohorts`` and care-team cohorts, also the patient's set of responsible clinicians:
    cohorts that overlap add up to more than the total, and their sum minus the total counts
    the patients in two, so each region of their Venn diagram is an atom. The team filter
    overlaps the same way (team A + team B - everyone counts the patients in both), and
    differs from the cohorts (any member, not only the responsible ones): its atoms are the
    regions of the whole care teams' Venn diagram, roles included (_care_team_set)."""
    fields: dict[str, Any] = {}
    if f.team:
        # Finer than the responsible set (which it determines), so it replaces it.
        fields["atom_team"] = _care_team_set()
    elif cohorts and f.by == Dimension.TEAM:
        fields["atom_responsible"] = _responsible_set()
    if f.sex:
        fields["atom_sex"] = F("patient__sex")
    if f.spo2_scale:
        fields["atom_scale"] = F("patient__monitoring__spo2_scale")
    if f.age_band:
        fields["atom_age"] = _age_band_case("taken_at" if observations else "raised_at")
    if f.complete_only and observations:
        # complete_only and not: their difference is the partial sets' patients.
        fields["atom_partial"] = F("news2_partial")
    return fields


def _unsafe_keys(
    qs: QuerySet, keys: Mapping[str, Any], atoms: Mapping[str, Any], day_field: str = ""
) -> set[tuple]:
    """Cell keys (tuples of ``keys``' values) where an atom has 1 to SMALL_CELL - 1 patients
    (one GROUP BY cell x atom query); with ``day_field``, on any local day of that field
    (grouped by day as well, so one unsafe day makes the cell unsafe)."""
    if not keys and not atoms and not day_field:
        n = qs.aggregate(atom_patients=Count("patient", distinct=True))["atom_patients"]
        return {()} if 0 < n < SMALL_CELL else set()
    days = {"atom_day": TruncDate(day_field)} if day_field else {}
    rows = (
        qs.annotate(**keys, **atoms, **days)
        .values(*keys, *atoms, *days)
        .annotate(atom_patients=Count("patient", distinct=True))
    )
    return {
        tuple(_local_date(r[k]) if k == "bucket" else r[k] for k in keys)
        for r in rows
        if 0 < r["atom_patients"] < SMALL_CELL
    }


def _unsafe_for(
    base: QuerySet,
    f: PopulationFilter,
    keys: Mapping[str, Any],
    *,
    observations: bool,
    cohorts: bool = False,
) -> set:
    """Keys of the cells of ``keys`` with an unsafe atom on any day of the range: a cell that
    sums several days is only as safe as its least safe day (see the module docstring)."""
    return {key for key, _day in _unsafe_days(base, f, keys, observations, cohorts)}


def _unsafe_days(
    base: QuerySet,
    f: PopulationFilter,
    keys: Mapping[str, Any],
    observations: bool,
    cohorts: bool = False,
) -> set[tuple[Any, date]]:
    """(key, local day) of every cell of ``keys`` with an unsafe atom on that day (one GROUP
    BY cell x atom x day query); the key is () for a range-wide cell."""
    day_field = "taken_at" if observations else "raised_at"
    atoms = _atom_fields(f, observations=observations, cohorts=cohorts)
    rows = (
        base.annotate(**keys, **atoms, atom_day=TruncDate(day_field))
        .values(*keys, *atoms, "atom_day")
        .annotate(atom_patients=Count("patient", distinct=True))
    )
    out = set()
    for r in rows:
        if 0 < r["atom_patients"] < SMALL_CELL:
            key = tuple(_local_date(r[k]) if k == "bucket" else r[k] for k in keys)
            out.add((key[0] if len(key) == 1 else key, _local_date(r["atom_day"])))
    return out


def _unsafe_split(
    base: QuerySet,
    f: PopulationFilter,
    keys: Mapping[str, Any],
    parts: Mapping[str, Q],
    *,
    observations: bool,
    cohorts: bool = False,
) -> dict[str, set]:
    """As _unsafe_for, for each cell as a whole (key "") and for each of its ``parts`` (a
    condition on its rows, e.g. high-risk sets, or alerts of one level), from one GROUP BY
    query with one filtered distinct count per part: {"": keys, part: keys}, and under
    "days" the local days on which a whole cell has an unsafe atom."""
    day_field = "taken_at" if observations else "raised_at"
    atoms = _atom_fields(f, observations=observations, cohorts=cohorts)
    counts = {
        "atom_patients": Count("patient", distinct=True),
        **{f"part_{n}": Count("patient", distinct=True, filter=q) for n, q in parts.items()},
    }
    rows = (
        base.annotate(**keys, **atoms, atom_day=TruncDate(day_field))
        .values(*keys, *atoms, "atom_day")
        .annotate(**counts)
    )
    out: dict[str, set] = {"": set(), "days": set(), **{n: set() for n in parts}}
    for r in rows:
        key = tuple(_local_date(r[k]) if k == "bucket" else r[k] for k in keys)
        key = key[0] if len(key) == 1 else key
        for name, column in (("", "atom_patients"), *((n, f"part_{n}") for n in parts)):
            if 0 < r[column] < SMALL_CELL:
                out[name].add(key)
        if 0 < r["atom_patients"] < SMALL_CELL:
            out["days"].add(_local_date(r["atom_day"]))
    return out


def population_refused(*, user: Any, f: PopulationFilter) -> bool:
    """True when the filter combination could single out a patient over its whole range: an
    atom of its constrained attributes (or the whole population) has 1 to SMALL_CELL - 1
    patients. Such a request shows no figure at all."""
    base = _filtered(
        Observation.objects.order_by(), _unconstrained(f), user=user, time_field="taken_at"
    )
    return bool(_unsafe_keys(base, {}, _atom_fields(f, observations=True)))


def _whole(unsafe: set) -> frozenset:
    """Complementary suppression of a table whose rows partition the sets (or alerts) of
    every day: one unsafe cell on one day hides every row (see the module docstring)."""
    return EVERYTHING if unsafe else frozenset()


def _high_parts(f: PopulationFilter) -> dict[str, Q]:
    """NEWS2's high-risk scored sets and the other scored sets (a share of high-risk sets,
    times the sets, counts both)."""
    scored = _scored_q(NEWS2_RISK, f)
    assert NEWS2_RISK.high is not None
    return {"high": NEWS2_RISK.high & scored, "rest": ~NEWS2_RISK.high & scored}


#: What population_unsafe_cells returns for a refused request: every cell of every kind.
_REFUSED_KINDS = ("cells", "alerts", "levels", "high", "stats", "median", "days", "alert_days")


def population_unsafe_cells(
    *,
    user: Any,
    f: PopulationFilter,
    table: str,
    refused: bool | None = None,
    news2_days: set[date] | None = None,
) -> dict[str, Any]:
    """The cells of one dashboard table that must be suppressed so no linear combination of
    offered requests (filters, ranges, tables, margins) reveals fewer than SMALL_CELL
    patients: {"cells": keys of cells whose figures are hidden, "alerts": keys whose alert
    figures are hidden, "levels": periods whose alerts per level are hidden, "high": keys
    whose share of high-risk sets is hidden, "stats": periods whose mean and percentiles are
    hidden, "median": cohorts whose median is hidden}; the "news2" table also gives "days",
    the days whose NEWS2 distribution has an unsafe cell (pass them as ``news2_days`` to the
    "periods" table to spare its query). Every key when the request is refused
    (population_refused; pass ``refused`` when already known)."""
    if population_refused(user=user, f=f) if refused is None else refused:
        return {k: EVERYTHING for k in _REFUSED_KINDS}
    u = _unconstrained(f)
    obs = _filtered(Observation.objects.order_by(), u, user=user, time_field="taken_at")
    alerts = _filtered(Alert.objects.order_by(), u, user=user, time_field="raised_at")
    scored = obs.filter(_scored_q(NEWS2_RISK, f))
    if table == "summary":
        # The range's totals, subtracted between requests (filters or ranges), are sums of
        # (day, atom) totals.
        return {
            "cells": _unsafe_for(obs, f, {}, observations=True),
            "alerts": _unsafe_for(alerts, f, {}, observations=False),
        }
    if table == "periods":
        bucket = {"bucket": _trunc("taken_at", f.period)}
        alert_bucket = {"bucket": _trunc("raised_at", f.period)}
        measure = measure_for(f.measure)
        # A period's share of high-risk sets splits its scored sets in two, and its alerts
        # per level partition its alert total: each part needs safe atoms on every day.
        news2_high = measure.source != "model" and measure.high is not None
        high_parts = _high_parts(f) if news2_high else {}
        sets = _unsafe_split(obs, f, bucket, high_parts, observations=True)
        levels = {level: Q(level=level) for level in ALERT_LEVELS}
        by_level = _unsafe_split(alerts, f, alert_bucket, levels, observations=False)
        high = set().union(*(sets[name] for name in high_parts))
        if measure.source == "model":
            # Scores carry no partial flag: complete_only does not change them. The model's
            # mean and percentiles are of its scores: their atoms must be safe on every day.
            risk = population_risk_scores(user=user, f=u, measure=measure)
            model_parts = (
                {"high": measure.high, "rest": ~measure.high} if measure.high is not None else {}
            )
            split = _unsafe_split(
                risk, replace(f, complete_only=False), bucket, model_parts, observations=True
            )
            if measure.high is not None:
                high = split["high"] | split["rest"]
            stats = split[""]
        else:
            # A mean x its sets is a sum of totals, and a percentile reads a total's sets: the
            # statistics of a period are hidden when its NEWS2 distribution would be.
            if news2_days is None:
                news2_days = population_unsafe_cells(user=user, f=f, table="news2")["days"]
            stats = {_period_start(day, f.period) for day in news2_days}
        return {
            "cells": sets[""],
            "alerts": by_level[""],
            "levels": set().union(*(by_level[level] for level in levels)),
            "high": high,
            "stats": stats,
            # The summary's (day, atom) cells, the same groups as these (spares its queries).
            "days": sets["days"],
            "alert_days": by_level["days"],
        }
    if table == "news2":
        unsafe = _unsafe_days(scored, f, {"total": F("news2_total")}, observations=True)
        return {"cells": _whole(unsafe), "days": {day for _total, day in unsafe}}
    if table == "bands":
        # Per clinical-risk band as published (low takes in the 3-4 totals without a red
        # score), so its atoms are exactly what a subtraction can reach.
        band = Case(
            When(news2_total__gte=7, then=Value(ClinicalRisk.HIGH.value)),
            When(news2_total__gte=5, then=Value(ClinicalRisk.MEDIUM.value)),
            When(RED_SCORE_BELOW_FIVE, then=Value(ClinicalRisk.LOW_MEDIUM.value)),
            default=Value(ClinicalRisk.LOW.value),
            output_field=CharField(),
        )
        return {"cells": _whole(_unsafe_for(scored, f, {"band": band}, observations=True))}
    if table == "cohorts":
        key: dict[str, Any] = {}
        if f.by != Dimension.ALL:
            obs = _with_cohort(obs, f, time_field="taken_at")
            alerts = _with_cohort(alerts, f, time_field="raised_at")
            key = {"key": F("cohort")}
        sets = _unsafe_split(obs, f, key, _high_parts(f), observations=True, cohorts=True)
        # A cohort's median reads the totals of its sets: hidden when a (total, atom) cell of
        # that cohort is unsafe on a day (a median does not add up, so cohort by cohort).
        by_total = {**key, "total": F("news2_total")}
        median = _unsafe_for(
            obs.filter(_scored_q(NEWS2_RISK, f)), f, by_total, observations=True, cohorts=True
        )
        return {
            "cells": _whole(sets[""]),
            "alerts": _whole(_unsafe_for(alerts, f, key, observations=False, cohorts=True)),
            "high": _whole(sets["high"] | sets["rest"]),
            "median": {k[0] if key else "all" for k in median},
        }
    if table == "acknowledge":
        # Acknowledged and not: the column and the alerts minus it.
        acked = Q(acknowledged_at__isnull=False)
        parts = {"acked": acked, "open": ~acked}
        split = _unsafe_split(alerts, f, {"key": F("level")}, parts, observations=False)
        return {"cells": _whole(split[""] | split["acked"] | split["open"])}
    raise KeyError(table)


def _summary_unsafe(periods: Unsafe) -> dict[str, Any]:
    """The summary's unsafe cells from the periods' (their (day, atom) groups are the
    summary's): as population_unsafe_cells(table="summary")."""
    if periods.get("cells") is EVERYTHING:
        return {"cells": EVERYTHING, "alerts": EVERYTHING}
    return {
        "cells": {()} if periods["days"] else set(),
        "alerts": {()} if periods["alert_days"] else set(),
    }


# --------------------------------------------------------------------------------------------
# The dashboard: every selector, then small-cell suppression
# --------------------------------------------------------------------------------------------

SUPPRESSED = f"<{SMALL_CELL}"


def suppress(count: int) -> int | str:
    """A count as it may be shown: 0 and counts of SMALL_CELL or more as they are, counts of
    1 to SMALL_CELL - 1 as '<5'."""
    return SUPPRESSED if 0 < count < SMALL_CELL else count


def small(patients: int) -> bool:
    """True when a cell aggregates too few patients for any of its statistics to be shown."""
    return 0 < patients < SMALL_CELL


def _fmt(value: float | None, digits: int = 1) -> str | float:
    return "" if value is None else round(value, digits)


def _minutes(value: timedelta | None) -> str | float:
    return "" if value is None else round(value.total_seconds() / 60, 1)


@dataclass
class Table:
    """A suppressed table, ready for the page and for CSV."""

    header: list[str]
    rows: list[list[Any]]


#: Unsafe cells of one table, as population_unsafe_cells returns them.
Unsafe = Mapping[str, Any]
NO_UNSAFE: Unsafe = {}


def _hides_any(cells: Any, keys: Iterable[Any]) -> bool:
    return any(k in cells for k in keys)


def hidden_cohorts(rows: list[CohortRow], unsafe: Unsafe = NO_UNSAFE) -> set[Any]:
    """Keys of the cohorts whose figures are hidden: all of them when one has fewer than
    SMALL_CELL patients or an unsafe atom on a day. The cohorts add up to the totals shown
    elsewhere, so the hidden ones must hold at least SMALL_CELL patients on every day; only
    the whole table does on every day of every range (module docstring). Care-team cohorts
    overlap: there an atom is also a region of their Venn diagram (patients responsible to
    the same set of clinicians), so the table hides whenever any region is unsafe on a day."""
    cells = unsafe.get("cells", ())
    if any(small(r.patients) for r in rows) or _hides_any(cells, (r.key for r in rows)):
        return {r.key for r in rows}
    return set()


def _cohort_alerts_hidden(rows: list[CohortRow], unsafe: Unsafe) -> bool:
    """The cohorts' alert counts, all or none (they add up to the alert total)."""
    return _hides_any(unsafe.get("alerts", ()), (r.key for r in rows)) or any(
        0 < r.alerts < SMALL_CELL or small(r.alert_patients) for r in rows
    )


def _cohort_high_hidden(rows: list[CohortRow], unsafe: Unsafe) -> bool:
    """The cohorts' shares of high-risk sets, all or none: share x sets is a count of
    high-risk sets, and sets minus it a count of the others."""
    return _hides_any(unsafe.get("high", ()), (r.key for r in rows)) or any(
        0 < r.high < SMALL_CELL or 0 < r.scored - r.high < SMALL_CELL for r in rows
    )


def cohort_table(rows: list[CohortRow], by: Dimension, unsafe: Unsafe = NO_UNSAFE) -> Table:
    """The cohort comparison with small cells suppressed (see hidden_cohorts)."""
    hidden = hidden_cohorts(rows, unsafe)
    alerts_hidden = _cohort_alerts_hidden(rows, unsafe)
    high_hidden = _cohort_high_hidden(rows, unsafe)
    # No distinct-patient count: over a range it is not additive over days, so two ranges
    # could be subtracted down to one patient (module docstring); patient-days are.
    header = [
        DIMENSION_LABELS[by],
        "Observation sets",
        "Patient-days",
        "Alerts",
        "Alerts per 100 patient-days",
        "Median NEWS2",
        "High-risk sets (%)",
    ]
    out = []
    for r in rows:
        if r.key in hidden:
            out.append([r.label, SUPPRESSED, SUPPRESSED, SUPPRESSED, "", "", ""])
            continue
        out.append(
            [
                r.label,
                suppress(r.sets),
                suppress(r.patient_days),
                SUPPRESSED if alerts_hidden and r.alerts else r.alerts,
                "" if alerts_hidden else _fmt(r.alert_rate, 2),
                "" if r.key in unsafe.get("median", ()) else _fmt(r.median),
                SUPPRESSED if high_hidden and r.scored else _fmt(_pct(r.share_high)),
            ]
        )
    return Table(header, out)


def _pct(share: float | None) -> float | None:
    return None if share is None else 100 * share


def period_table(
    rows: list[PeriodRow], period: str, measure: RiskMeasure, unsafe: Unsafe = NO_UNSAFE
) -> Table:
    """Risk and alert rates per period; a period with fewer than SMALL_CELL patients, or an
    unsafe atom, shows no statistics (its alerts none when their atoms are unsafe), and one
    whose NEWS2 distribution has an unsafe cell on a day no mean or percentiles."""
    cells, alert_cells = unsafe.get("cells", ()), unsafe.get("alerts", ())
    level_cells, high_cells = unsafe.get("levels", ()), unsafe.get("high", ())
    stats_cells = unsafe.get("stats", ())
    levels = list(ALERT_LEVELS)
    header = [
        "Week starting" if period == "week" else "Day",
        "Patients",
        "Observation sets",
        f"Mean {measure.label}",
        *(f"{measure.label} {_pkey(p)}" for p in PERCENTILES),
        measure.high_label,
        "Patient-days",
        "Alerts",
        "Alerts per 100 patient-days",
        *(f"{level} alerts" for level in levels),
    ]
    if period == "week":
        # A week clipped to the range: its distinct patients differ between ranges ending on
        # different days of it, so a week shows its (additive) patient-days.
        header[1] = "Patient-days"
    out: list[list[Any]] = []
    for r in rows:
        label = r.period.isoformat()
        head = r.patient_days if period == "week" else r.patients
        if small(r.patients) or r.patients == 0 or r.period in cells:
            blank = ["" for _ in header[2:]]
            shown = SUPPRESSED if r.period in cells and r.patients else suppress(head)
            out.append([label, shown, *blank])
            continue
        alerts_small = 0 < r.alert_total < SMALL_CELL or r.period in alert_cells
        levels_hidden = alerts_small or period_levels_hidden(r, level_cells)
        high_hidden = period_high_hidden(r, high_cells)
        stats = r if r.period not in stats_cells else replace(r, mean=None, percentiles={})
        out.append(
            [
                label,
                head,
                suppress(r.sets),
                _fmt(stats.mean, 2),
                *(_fmt(stats.percentiles.get(_pkey(p)), 2) for p in PERCENTILES),
                SUPPRESSED if high_hidden else _fmt(_pct(r.share_high)),
                suppress(r.patient_days),
                SUPPRESSED if alerts_small and r.alert_total else suppress(r.alert_total),
                "" if alerts_small else _fmt(r.alert_rate(), 2),
                *(
                    SUPPRESSED if levels_hidden and r.alerts.get(level) else r.alerts.get(level, 0)
                    for level in levels
                ),
            ]
        )
    return Table(header, out)


def period_levels_hidden(row: PeriodRow, level_cells: Any = ()) -> bool:
    """A period's alerts per level, all or none: they add up to its alert total."""
    return row.period in level_cells or any(0 < n < SMALL_CELL for n in row.alerts.values())


def period_high_hidden(row: PeriodRow, high_cells: Any = ()) -> bool:
    """A period's share of high-risk sets: share x scored sets counts the high-risk ones and
    the rest, so both need safe atoms on every day."""
    return (
        row.period in high_cells
        or 0 < row.high < SMALL_CELL
        or 0 < row.scored - row.high < SMALL_CELL
    )


def histogram_table(rows: list[HistogramRow], unsafe: Unsafe = NO_UNSAFE) -> Table:
    """Sets per NEWS2 total; a total seen in fewer than SMALL_CELL patients (or with an
    unsafe atom on a day) is suppressed. No distinct patients: they are not additive over
    days (module docstring)."""
    hidden = histogram_hidden(rows, unsafe)
    return Table(
        ["NEWS2 total", "Observation sets"],
        [[r.value, SUPPRESSED] if hidden else [r.value, suppress(r.sets)] for r in rows],
    )


def histogram_hidden(rows: list[HistogramRow], unsafe: Unsafe = NO_UNSAFE) -> bool:
    """The histogram, all or none: its rows add up to the scored sets, so one hidden row
    needs others hidden on each of its days, and only all of them always are."""
    return any(small(r.patients) for r in rows) or _hides_any(
        unsafe.get("cells", ()), (r.value for r in rows)
    )


def bands_hidden(rows: list[BandRow], unsafe: Unsafe = NO_UNSAFE) -> bool:
    """The clinical-risk bands, all or none (as histogram_hidden)."""
    return any(small(r.patients) or 0 < r.sets < SMALL_CELL for r in rows) or _hides_any(
        unsafe.get("cells", ()), (r.band for r in rows)
    )


def bands_table(rows: list[BandRow], unsafe: Unsafe = NO_UNSAFE) -> Table:
    """Sets per clinical-risk band with their share of all scored sets (all or none:
    bands_hidden)."""
    hidden = bands_hidden(rows, unsafe)
    return Table(
        ["Clinical risk", "Observation sets", "Share of sets (%)"],
        [
            [r.band, SUPPRESSED if r.sets else 0, ""]
            if hidden
            else [r.band, r.sets, _fmt(_pct(r.share))]
            for r in rows
        ],
    )


def acknowledge_table(rows: list[AcknowledgeRow], unsafe: Unsafe = NO_UNSAFE) -> Table:
    """Time to acknowledge per alert level; timings need SMALL_CELL acknowledged alerts from
    SMALL_CELL patients, and safe atoms."""
    labels = dict(Alert.Level.choices)
    # All or none: the levels add up to the alert total, and acknowledged and not to a
    # level's alerts.
    if _hides_any(unsafe.get("cells", ()), (r.level for r in rows)) or any(
        small(r.patients)
        or 0 < r.acknowledged < SMALL_CELL
        or 0 < r.alerts - r.acknowledged < SMALL_CELL
        for r in rows
    ):
        return Table(
            ACKNOWLEDGE_HEADER,
            [[labels.get(r.level, r.level), SUPPRESSED, SUPPRESSED, "", ""] for r in rows],
        )
    out = []
    for r in rows:
        hidden = small(r.patients) or 0 < r.acknowledged < SMALL_CELL
        out.append(
            [
                labels.get(r.level, r.level),
                SUPPRESSED if small(r.patients) else suppress(r.alerts),
                suppress(r.acknowledged),
                "" if hidden else _minutes(r.median),
                "" if hidden else _minutes(r.p90),
            ]
        )
    return Table(ACKNOWLEDGE_HEADER, out)


ACKNOWLEDGE_HEADER = [
    "Alert level",
    "Alerts",
    "Acknowledged",
    "Median minutes to acknowledge",
    "90th percentile minutes",
]


@dataclass
class Dashboard:
    """Everything the population page shows, already suppressed, plus the raw series the
    charts draw (with suppressed periods and bins removed)."""

    filter: PopulationFilter
    sees_all: bool
    summary: Summary
    periods: list[PeriodRow]
    histogram: list[HistogramRow]
    bands: list[BandRow]
    cohorts: list[CohortRow]
    acknowledge: list[AcknowledgeRow]
    measure: RiskMeasure = NEWS2_RISK
    #: table key -> its unsafe cells (population_unsafe_cells)
    unsafe: Mapping[str, Unsafe] = field(default_factory=dict)
    #: True when the filters could single out a patient: no figure is shown
    refused: bool = False

    @property
    def summary_cells(self) -> dict[str, Any]:
        s = self.summary
        alerts_hidden = () in self._cells("summary", "alerts")
        # No distinct patients over the range (not additive over days: module docstring).
        if small(s.patients) or self.refused or () in self._cells("summary"):
            return {k: SUPPRESSED for k in ("sets", "patient_days", "alerts")} | {
                "mean": "",
                "alert_rate": "",
            }
        # A mean x the sets is a sum of NEWS2 totals: hidden with the range's distribution.
        mean_hidden = histogram_hidden(self.histogram, self.unsafe.get("news2", NO_UNSAFE))
        return {
            "sets": suppress(s.sets),
            "patient_days": suppress(s.patient_days),
            "alerts": SUPPRESSED if alerts_hidden and s.alerts else suppress(s.alerts),
            "mean": "" if mean_hidden else _fmt(s.mean_news2, 2),
            "alert_rate": ""
            if not s.patient_days or 0 < s.alerts < SMALL_CELL or alerts_hidden
            else round(100 * s.alerts / s.patient_days, 2),
        }

    def tables(self) -> dict[str, Table]:
        """Every exportable table by key (the keys the CSV export accepts)."""
        u = self.unsafe
        return {
            "cohorts": cohort_table(self.cohorts, self.filter.by, u.get("cohorts", NO_UNSAFE)),
            "periods": period_table(
                self.periods, self.filter.period, self.measure, u.get("periods", NO_UNSAFE)
            ),
            "news2": histogram_table(self.histogram, u.get("news2", NO_UNSAFE)),
            "bands": bands_table(self.bands, u.get("bands", NO_UNSAFE)),
            "acknowledge": acknowledge_table(self.acknowledge, u.get("acknowledge", NO_UNSAFE)),
        }

    def _cells(self, table: str, kind: str = "cells") -> Any:
        return self.unsafe.get(table, NO_UNSAFE).get(kind, ())

    def chart_periods(self) -> list[PeriodRow]:
        """Periods whose statistics may be drawn (the alert-rate chart also needs their
        alerts' atoms safe: chart_alert_periods); a hidden share of high-risk sets is
        dropped (no cut-off, so none is drawn), and so are hidden means and percentiles."""
        cells, high = self._cells("periods"), self._cells("periods", "high")
        stats = self._cells("periods", "stats")
        out = []
        for p in self.periods:
            if p.patients < SMALL_CELL or p.period in cells:
                continue
            if period_high_hidden(p, high):
                p = replace(p, has_high=False)
            if p.period in stats:
                p = replace(p, mean=None, percentiles={})
            out.append(p)
        return out

    def chart_alert_periods(self) -> list[PeriodRow]:
        """Periods whose alerts per level may be drawn: rate x patient-days is a count."""
        cells = self._cells("periods", "alerts")
        levels = self._cells("periods", "levels")
        return [
            p
            for p in self.chart_periods()
            if p.period not in cells
            and not 0 < p.alert_total < SMALL_CELL
            and not period_levels_hidden(p, levels)
        ]

    def chart_histogram(self) -> list[HistogramRow]:
        if histogram_hidden(self.histogram, self.unsafe.get("news2", NO_UNSAFE)):
            return []
        return [h for h in self.histogram if h.sets >= SMALL_CELL]

    def chart_cohorts(self) -> list[CohortRow]:
        """Cohorts that may be drawn, their hidden alert rates and shares of high-risk sets
        emptied (no patient-days, no scored sets: the chart leaves those bars out)."""
        unsafe = self.unsafe.get("cohorts", NO_UNSAFE)
        if hidden_cohorts(self.cohorts, unsafe):
            return []
        blank: dict[str, int] = {}
        if _cohort_alerts_hidden(self.cohorts, unsafe):
            blank["patient_days"] = 0
        if _cohort_high_hidden(self.cohorts, unsafe):
            blank["scored"] = 0
        return [replace(c, **blank) for c in self.cohorts]

    def chart_bands(self) -> list[BandRow]:
        if bands_hidden(self.bands, self.unsafe.get("bands", NO_UNSAFE)):
            return []
        return list(self.bands)


#: The dashboard's selectors (the benchmark and the scale test time each).
DASHBOARD_QUERIES: Mapping[str, Callable[..., Any]] = {
    "periods": population_periods,
    "distinct_patients": lambda *, user, f: population_summary(user=user, f=f, periods=[]),
    "news2_histogram": news2_histogram,
    "news2_bands": news2_bands,
    "cohorts": cohort_comparison,
    "acknowledge": acknowledge_times,
}


def population_dashboard(*, user: Any, f: PopulationFilter) -> Dashboard:
    """Every aggregate of the population page for ``user``'s scope (about a dozen queries,
    independent of the number of observations). NoModelRisk when ``f`` asks for the model's
    risk and none is in service."""
    measure = measure_for(f.measure)
    periods = population_periods(user=user, f=f, measure=measure)
    refused = population_refused(user=user, f=f)
    unsafe: dict[str, Unsafe] = {
        "news2": population_unsafe_cells(user=user, f=f, table="news2", refused=refused)
    }
    unsafe["periods"] = population_unsafe_cells(
        user=user, f=f, table="periods", refused=refused, news2_days=unsafe["news2"]["days"]
    )
    unsafe["summary"] = _summary_unsafe(unsafe["periods"])
    for table in EXPORT_TABLES:
        if table not in unsafe:
            unsafe[table] = population_unsafe_cells(user=user, f=f, table=table, refused=refused)
    return Dashboard(
        unsafe=unsafe,
        refused=refused,
        filter=f,
        sees_all=population_sees_all(user=user),
        summary=population_summary(user=user, f=f, periods=periods),
        periods=periods,
        histogram=news2_histogram(user=user, f=f),
        bands=news2_bands(user=user, f=f),
        cohorts=cohort_comparison(user=user, f=f),
        acknowledge=acknowledge_times(user=user, f=f),
        measure=measure,
    )


def _periods_table(user: Any, f: PopulationFilter) -> Table:
    measure = measure_for(f.measure)
    return period_table(
        population_periods(user=user, f=f, measure=measure),
        f.period,
        measure,
        population_unsafe_cells(user=user, f=f, table="periods"),
    )


def _unsafe(user: Any, f: PopulationFilter, table: str) -> Unsafe:
    return population_unsafe_cells(user=user, f=f, table=table)


#: The tables the CSV export offers: key -> (file stem, builder from (user, filter)).
EXPORT_TABLES: Mapping[str, tuple[str, Callable[[Any, PopulationFilter], Table]]] = {
    "cohorts": (
        "cohort-comparison",
        lambda user, f: cohort_table(
            cohort_comparison(user=user, f=f), f.by, _unsafe(user, f, "cohorts")
        ),
    ),
    "periods": (
        "risk-and-alerts-over-time",
        lambda user, f: _periods_table(user, f),
    ),
    "news2": (
        "news2-distribution",
        lambda user, f: histogram_table(news2_histogram(user=user, f=f), _unsafe(user, f, "news2")),
    ),
    "bands": (
        "news2-risk-bands",
        lambda user, f: bands_table(news2_bands(user=user, f=f), _unsafe(user, f, "bands")),
    ),
    "acknowledge": (
        "time-to-acknowledge",
        lambda user, f: acknowledge_table(
            acknowledge_times(user=user, f=f), _unsafe(user, f, "acknowledge")
        ),
    ),
}


TABLE_TITLES = {
    "cohorts": "Cohort comparison",
    "periods": "Risk and alerts per period",
    "news2": "NEWS2 distribution",
    "bands": "Clinical-risk bands",
    "acknowledge": "Time to acknowledge alerts",
}


def population_table(*, user: Any, f: PopulationFilter, table: str) -> Table:
    """One suppressed dashboard table (only its own queries run); KeyError for an unknown
    table key."""
    return EXPORT_TABLES[table][1](user, f)
