"""What a population request asks for and who may see what: the cohort dimensions and risk
measures, the filter, care-team scope and cohort keys (see the dashboard module for the
definitions)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import (
    Case,
    CharField,
    DateField,
    F,
    FilteredRelation,
    Func,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from medai_site.core.roles import Role, has_role
from medai_site.patients.models import CareTeamMembership, Patient
from medai_site.patients.selectors import patient_list
from remote_care.models import Alert
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
