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
- Clinical-risk bands are RCP NEWS2 Chart 2, as ``remote_care.physiology.news2.risk_for``:
  7+ high, 5-6 medium, otherwise low-medium when one parameter scored 3, else low.
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
within fewer than ``SMALL_CELL`` values; tests/remote_care/analytics/test_differencing.py
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

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from django.conf import settings

from medai_site.core.replica import ReadSource, on_replica
from remote_care.analytics import rollups
from remote_care.analytics.differencing import (
    NO_UNSAFE,
    Unsafe,
    _summary_unsafe,
    population_refused,
    population_unsafe_cells,
)
from remote_care.analytics.filters import (
    ALERT_LEVELS,
    DIMENSION_LABELS,
    NEWS2_RISK,
    PERCENTILES,
    SMALL_CELL,
    Dimension,
    PopulationFilter,
    RiskMeasure,
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
    _pkey,
    acknowledge_times,
    cohort_comparison,
    news2_bands,
    news2_histogram,
    population_periods,
    population_summary,
)
from remote_care.models import Alert

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
    #: which database the figures were read from, and how fresh it was
    read: ReadSource | None = None

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


#: The dashboard's selectors (the benchmark and the scale test time each) on the raw tables:
#: the reference the roll-ups must equal.
DASHBOARD_QUERIES: Mapping[str, Callable[..., Any]] = {
    "periods": population_periods,
    "distinct_patients": lambda *, user, f: population_summary(user=user, f=f, periods=[]),
    "news2_histogram": news2_histogram,
    "news2_bands": news2_bands,
    "cohorts": cohort_comparison,
    "acknowledge": acknowledge_times,
}


#: The same queries on the roll-up tables (what the page runs).
ROLLUP_QUERIES: Mapping[str, Callable[..., Any]] = {
    "periods": rollups.population_periods,
    "distinct_patients": lambda *, user, f: rollups.population_summary(user=user, f=f, periods=[]),
    "news2_histogram": rollups.news2_histogram,
    "news2_bands": rollups.news2_bands,
    "cohorts": rollups.cohort_comparison,
    "acknowledge": rollups.acknowledge_times,
}


@dataclass(frozen=True)
class Source:
    """Where the dashboard reads its aggregates: the raw tables or the roll-ups (same
    signatures, same results; tests/remote_care/analytics/test_rollups.py)."""

    periods: Callable[..., list[PeriodRow]]
    summary: Callable[..., Summary]
    histogram: Callable[..., list[HistogramRow]]
    bands: Callable[..., list[BandRow]]
    cohorts: Callable[..., list[CohortRow]]
    acknowledge: Callable[..., list[AcknowledgeRow]]
    refused: Callable[..., bool]
    unsafe: Callable[..., dict[str, Any]]
    #: one GROUP BY patient the roll-up selectors share (None on the raw tables)
    profile: Callable[..., Any] | None = None


RAW = Source(
    periods=population_periods,
    summary=population_summary,
    histogram=news2_histogram,
    bands=news2_bands,
    cohorts=cohort_comparison,
    acknowledge=acknowledge_times,
    refused=population_refused,
    unsafe=population_unsafe_cells,
)


ROLLUPS = Source(
    periods=rollups.population_periods,
    summary=rollups.population_summary,
    histogram=rollups.news2_histogram,
    bands=rollups.news2_bands,
    cohorts=rollups.cohort_comparison,
    acknowledge=rollups.acknowledge_times,
    refused=rollups.population_refused,
    unsafe=rollups.population_unsafe_cells,
    profile=rollups._profile,
)


def population_source() -> Source:
    """The roll-ups unless MEDAI_ANALYTICS_ROLLUPS is off (then the raw tables)."""
    return ROLLUPS if settings.MEDAI_ANALYTICS_ROLLUPS else RAW


def population_dashboard(
    *, user: Any, f: PopulationFilter, source: Source | None = None
) -> Dashboard:
    """Every aggregate of the population page for ``user``'s scope (about a dozen queries,
    independent of the number of observations), from ``source`` (population_source()), read
    on the analytics replica when one is configured and ``user`` sees every patient
    (``Dashboard.read`` says where and how fresh). NoModelRisk when ``f`` asks for the
    model's risk and none is in service."""
    src = source or population_source()
    dashboard, read = on_replica(
        lambda: _dashboard(user, f, src), allowed=population_sees_all(user=user)
    )
    dashboard.read = read
    return dashboard


def _dashboard(user: Any, f: PopulationFilter, src: Source) -> Dashboard:
    measure = measure_for(f.measure)
    shared: dict[str, Any] = {}
    if src.profile is not None:
        shared["profile"] = src.profile(user=user, f=f)
    periods = src.periods(user=user, f=f, measure=measure, **shared)
    refused = src.refused(user=user, f=f, **shared)
    unsafe: dict[str, Unsafe] = {
        "news2": src.unsafe(user=user, f=f, table="news2", refused=refused, **shared)
    }
    unsafe["periods"] = src.unsafe(
        user=user,
        f=f,
        table="periods",
        refused=refused,
        news2_days=unsafe["news2"]["days"],
        **shared,
    )
    unsafe["summary"] = _summary_unsafe(unsafe["periods"])
    for table in EXPORT_TABLES:
        if table not in unsafe:
            unsafe[table] = src.unsafe(user=user, f=f, table=table, refused=refused, **shared)
    return Dashboard(
        unsafe=unsafe,
        refused=refused,
        filter=f,
        sees_all=population_sees_all(user=user),
        summary=src.summary(user=user, f=f, periods=periods, **shared),
        periods=periods,
        histogram=src.histogram(user=user, f=f, **shared),
        bands=src.bands(user=user, f=f, **shared),
        cohorts=src.cohorts(user=user, f=f, **shared),
        acknowledge=src.acknowledge(user=user, f=f, **shared),
        measure=measure,
    )


def _periods_table(user: Any, f: PopulationFilter, src: Source) -> Table:
    measure = measure_for(f.measure)
    return period_table(
        src.periods(user=user, f=f, measure=measure),
        f.period,
        measure,
        src.unsafe(user=user, f=f, table="periods"),
    )


def _table(
    build: Callable[..., Table], rows: Callable[[Source], Callable[..., Any]], table: str
) -> Callable[[Any, PopulationFilter, Source], Table]:
    """An export builder: the table's rows and unsafe cells from one source."""

    def run(user: Any, f: PopulationFilter, src: Source) -> Table:
        return build(rows(src)(user=user, f=f), src.unsafe(user=user, f=f, table=table))

    return run


#: The tables the CSV export offers: key -> (file stem, builder from (user, filter, source)).
EXPORT_TABLES: Mapping[str, tuple[str, Callable[[Any, PopulationFilter, Source], Table]]] = {
    "cohorts": (
        "cohort-comparison",
        lambda user, f, src: cohort_table(
            src.cohorts(user=user, f=f), f.by, src.unsafe(user=user, f=f, table="cohorts")
        ),
    ),
    "periods": ("risk-and-alerts-over-time", _periods_table),
    "news2": ("news2-distribution", _table(histogram_table, lambda s: s.histogram, "news2")),
    "bands": ("news2-risk-bands", _table(bands_table, lambda s: s.bands, "bands")),
    "acknowledge": (
        "time-to-acknowledge",
        _table(acknowledge_table, lambda s: s.acknowledge, "acknowledge"),
    ),
}


TABLE_TITLES = {
    "cohorts": "Cohort comparison",
    "periods": "Risk and alerts per period",
    "news2": "NEWS2 distribution",
    "bands": "Clinical-risk bands",
    "acknowledge": "Time to acknowledge alerts",
}


def population_table(
    *, user: Any, f: PopulationFilter, table: str, source: Source | None = None
) -> Table:
    """One suppressed dashboard table (only its own queries run) from ``source``
    (population_source()), read where population_dashboard reads; KeyError for an unknown
    table key."""
    build, src = EXPORT_TABLES[table][1], source or population_source()
    rows, _ = on_replica(lambda: build(user, f, src), allowed=population_sees_all(user=user))
    return rows
