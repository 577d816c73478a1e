"""Reads of shadow mode: each version's shadow periods and how its answers agreed with the
active version's and with clinicians'. Aggregates only: no item, and so no patient, is named."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db.models import Avg, Count, F, Q, QuerySet
from django.db.models.functions import Abs, TruncDate

from medai_site.registry.catalogue import CardSection
from medai_site.registry.governance import TimelineEntry
from medai_site.registry.models import ModelShadow, ModelVersion, ShadowResult
from medai_site.registry.selectors import model_version_active
from medai_site.registry.shadow import ShadowFamily, shadow_family_of


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class ShadowCounts:
    """Agreement counts over a set of shadow results."""

    scored: int = 0
    agreed: int = 0
    labelled: int = 0
    shadow_correct: int = 0
    active_correct: int = 0
    # Mean |shadow score - active score| where both answered with a number (risk, predictors).
    mean_score_gap: float | None = None

    @property
    def agreement(self) -> float | None:
        return _share(self.agreed, self.scored)

    @property
    def shadow_accuracy(self) -> float | None:
        return _share(self.shadow_correct, self.labelled)

    @property
    def active_accuracy(self) -> float | None:
        return _share(self.active_correct, self.labelled)


def _counts(results: QuerySet[ShadowResult]) -> ShadowCounts:
    labelled = ~Q(clinician_label="")
    row = results.aggregate(
        scored=Count("pk"),
        agreed=Count("pk", filter=Q(agrees=True)),
        labelled=Count("pk", filter=labelled),
        shadow_correct=Count("pk", filter=labelled & Q(shadow_label=F("clinician_label"))),
        active_correct=Count("pk", filter=labelled & Q(active_label=F("clinician_label"))),
        gap=Avg(
            Abs(F("shadow_score") - F("active_score")),
            filter=Q(shadow_score__isnull=False, active_score__isnull=False),
        ),
    )
    return ShadowCounts(
        scored=row["scored"],
        agreed=row["agreed"],
        labelled=row["labelled"],
        shadow_correct=row["shadow_correct"],
        active_correct=row["active_correct"],
        mean_score_gap=float(row["gap"]) if row["gap"] is not None else None,
    )


@dataclass(frozen=True)
class ShadowPeriod:
    """One shadow period of a version, for the dashboard and the governance timeline."""

    pk: int
    version_id: int
    started_at: datetime
    started_by: str
    reason: str
    stopped_at: datetime | None
    stopped_by: str
    stop_reason: str
    failures: int
    last_error: str
    counts: ShadowCounts

    @property
    def running(self) -> bool:
        return self.stopped_at is None


def model_version_shadow_record(*, version: ModelVersion) -> list[ShadowPeriod]:
    """Every shadow period of ``version``, newest first, with its counts and agreement (for
    the governance timeline and the model-facts card); [] when it never ran in shadow."""
    shadows = ModelShadow.objects.filter(version=version).select_related("started_by", "stopped_by")
    return [
        ShadowPeriod(
            pk=s.pk,
            version_id=s.version_id,
            started_at=s.started_at,
            started_by=s.started_by.get_username(),
            reason=s.reason,
            stopped_at=s.stopped_at,
            stopped_by=s.stopped_by.get_username() if s.stopped_by else "",
            stop_reason=s.stop_reason,
            failures=s.failures,
            last_error=s.last_error,
            counts=_counts(ShadowResult.objects.filter(shadow=s)),
        )
        for s in shadows
    ]


def shadow_record_line(*, version: ModelVersion) -> str:
    """The model-facts card's one line on ``version``'s shadow record ("" when none)."""
    periods = model_version_shadow_record(version=version)
    if not periods:
        return ""
    scored = sum(p.counts.scored for p in periods)
    agreed = sum(p.counts.agreed for p in periods)
    state = "running now" if periods[0].running else "stopped"
    share = f", agreed with the active version on {agreed / scored:.1%}" if scored else ""
    return (
        f"{len(periods)} period{'s' if len(periods) != 1 else ''} ({state}): "
        f"{scored:,} live item{'s' if scored != 1 else ''} scored{share}."
    )


@dataclass(frozen=True)
class ShadowDay:
    day: date
    scored: int
    agreed: int

    @property
    def agreement(self) -> float | None:
        return _share(self.agreed, self.scored)


@dataclass(frozen=True)
class ConfusionRow:
    """How often the shadow answered each label when the active version answered ``label``."""

    label: str
    counts: list[int]
    total: int
    agreed: int

    @property
    def agreement(self) -> float | None:
        return _share(self.agreed, self.total)


@dataclass
class ShadowDashboard:
    version: ModelVersion
    active: ModelVersion | None
    family: ShadowFamily | None
    periods: list[ShadowPeriod]
    counts: ShadowCounts
    labels: list[str] = field(default_factory=list)
    confusion: list[ConfusionRow] = field(default_factory=list)
    days: list[ShadowDay] = field(default_factory=list)
    # For a family that does not score live traffic: headline metrics side by side.
    metrics_side_by_side: list[tuple[str, Any, Any]] = field(default_factory=list)

    @property
    def failures(self) -> int:
        return sum(p.failures for p in self.periods)

    @property
    def running(self) -> ShadowPeriod | None:
        return next((p for p in self.periods if p.running), None)


def _side_by_side(version: ModelVersion, active: ModelVersion | None) -> list[tuple[str, Any, Any]]:
    def scalars(v: ModelVersion | None) -> dict[str, float]:
        return {
            k: float(x)
            for k, x in ((v.metrics if v is not None else None) or {}).items()
            if isinstance(x, (int, float)) and not isinstance(x, bool)
        }

    mine, theirs = scalars(version), scalars(active)
    return [(name, mine.get(name), theirs.get(name)) for name in sorted(set(mine) | set(theirs))]


def shadow_dashboard(*, version: ModelVersion) -> ShadowDashboard:
    """Agreement of ``version``'s shadow answers with the active version's (overall, per
    active label as a confusion table, per day) and with clinicians' labels where given."""
    results = ShadowResult.objects.filter(shadow_version=version)
    family = shadow_family_of(version.task)
    active = model_version_active(task=version.task)
    board = ShadowDashboard(
        version=version,
        active=active,
        family=family,
        periods=model_version_shadow_record(version=version),
        counts=_counts(results),
    )
    if family is not None and not family.scores_live:
        board.metrics_side_by_side = _side_by_side(version, active)
    pairs = list(
        results.values_list("active_label", "shadow_label").annotate(n=Count("pk")).order_by()
    )
    board.labels = sorted({a for a, _, _ in pairs} | {s for _, s, _ in pairs})
    index = {label: i for i, label in enumerate(board.labels)}
    rows: dict[str, list[int]] = {}
    for active_label, shadow_label, n in pairs:
        rows.setdefault(active_label, [0] * len(board.labels))[index[shadow_label]] += n
    board.confusion = [
        ConfusionRow(
            label=label,
            counts=counts,
            total=sum(counts),
            agreed=counts[index[label]],
        )
        for label, counts in sorted(rows.items())
    ]
    # TruncDate works in the site's time zone, so a day on the chart is a local day.
    board.days = [
        ShadowDay(day=row["day"], scored=row["n"], agreed=row["agreed"])
        for row in results.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("pk"), agreed=Count("pk", filter=Q(agrees=True)))
        .order_by("day")
    ]
    return board


def shadow_overview() -> list[tuple[ModelVersion, ShadowCounts, bool]]:
    """Every version that has run in shadow, newest period first: (version, counts, running)."""
    seen: dict[int, bool] = {}
    for version_id, stopped_at in ModelShadow.objects.values_list("version", "stopped_at"):
        seen[version_id] = seen.get(version_id, False) or stopped_at is None
    versions = ModelVersion.objects.filter(pk__in=seen)
    return [
        (v, _counts(ShadowResult.objects.filter(shadow_version=v)), seen[v.pk]) for v in versions
    ]


def shadow_candidates() -> list[ModelVersion]:
    """Approved versions that are not in service, of tasks with an active version, not in
    shadow now: those a model admin may start in shadow (the service checks again)."""
    running = ModelShadow.objects.filter(stopped_at__isnull=True).values("version")
    active_tasks = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).values("task")
    return list(
        ModelVersion.objects.filter(
            approved_by__isnull=False,
            status__in=[ModelVersion.Status.READY, ModelVersion.Status.RETIRED],
            task__in=active_tasks,
        ).exclude(pk__in=running)
    )


def shadow_card_sections(*, version: ModelVersion) -> list[CardSection]:
    """The model-facts card's "Shadow record" section for ``version`` ([] when it never ran
    in shadow): one line per period with its counts and agreement."""
    periods = model_version_shadow_record(version=version)
    if not periods:
        return []
    rows = tuple(
        (
            f"{p.started_at:%Y-%m-%d}"
            + (f" to {p.stopped_at:%Y-%m-%d}" if p.stopped_at else " (running)"),
            f"{p.counts.scored:,} scored"
            + (f", agreement {p.counts.agreement:.1%}" if p.counts.agreement is not None else "")
            + (f", {p.failures} failure(s)" if p.failures else ""),
        )
        for p in periods
    )
    return [
        CardSection(
            key="shadow",
            title="Shadow record",
            summary=shadow_record_line(version=version),
            rows=rows,
        )
    ]


def shadow_timeline_entries(version: ModelVersion) -> list[TimelineEntry]:
    """The governance timeline's entries for ``version``'s shadow periods: one when it started
    (with its agreement so far) and one when it stopped."""
    entries: list[TimelineEntry] = []
    for period in model_version_shadow_record(version=version):
        counts = period.counts
        rows: list[tuple[str, str]] = [("Live items scored", f"{counts.scored:,}")]
        if counts.agreement is not None:
            rows.append(("Agreement with the active version", f"{counts.agreement:.1%}"))
        if counts.labelled:
            rows.append(
                (
                    "Against clinicians' labels",
                    f"shadow {counts.shadow_accuracy:.1%}, active {counts.active_accuracy:.1%} "
                    f"({counts.labelled:,} labelled)",
                )
            )
        if period.failures:
            rows.append(("Shadow failures", f"{period.failures:,}"))
        entries.append(
            TimelineEntry(
                at=period.started_at,
                kind="shadow",
                title="Shadow mode started" + (" (running)" if period.running else ""),
                text=period.reason,
                actor=period.started_by,
                rows=tuple(rows),
            )
        )
        if period.stopped_at is not None:
            entries.append(
                TimelineEntry(
                    at=period.stopped_at,
                    kind="shadow",
                    title="Shadow mode stopped",
                    text=period.stop_reason,
                    actor=period.stopped_by,
                )
            )
    return entries


def shadow_release_rows(version: ModelVersion) -> list[tuple[str, str]]:
    """The release record's "Shadow record" row ([] when the version never ran in shadow)."""
    line = shadow_record_line(version=version)
    return [("Shadow record", line)] if line else []
