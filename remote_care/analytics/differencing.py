"""Differencing protection: the atoms of the constrained attributes per cell and day, and the
cells a request may not show (see the dashboard module's docstring for the argument)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from typing import Any

from django.db import connection
from django.db.models import (
    Aggregate,
    Case,
    CharField,
    Count,
    F,
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
    TruncDate,
)

from medai_site.patients.models import CareTeamMembership
from remote_care.analytics.filters import (
    ALERT_LEVELS,
    NEWS2_RISK,
    SMALL_CELL,
    Dimension,
    PopulationFilter,
    _age_band_case,
    _filtered,
    _with_cohort,
    measure_for,
)
from remote_care.analytics.selectors import (
    RED_SCORE_BELOW_FIVE,
    _local_date,
    _period_start,
    _scored_q,
    _trunc,
    population_risk_scores,
)
from remote_care.models import Alert, Observation
from remote_care.physiology.news2 import ClinicalRisk


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


#: Unsafe cells of one table, as population_unsafe_cells returns them.
Unsafe = Mapping[str, Any]


NO_UNSAFE: Unsafe = {}
