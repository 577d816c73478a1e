"""Reads of the model registry."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from medai_site.registry.catalogue import CardSection
from medai_site.registry.governance import TimelineEntry, governance_timeline_sources
from medai_site.registry.models import (
    ModelActivation,
    ModelApproval,
    ModelValidation,
    ModelVersion,
)


def model_version_active(*, task: str) -> ModelVersion | None:
    """The version in service for ``task``, or None."""
    return ModelVersion.objects.filter(task=task, status=ModelVersion.Status.ACTIVE).first()


def model_version_list(*, task: str | None = None, status: str = "") -> QuerySet[ModelVersion]:
    """Versions (of ``task``, in ``status`` when given), newest first within each task."""
    versions = ModelVersion.objects.select_related("created_by", "activated_by")
    if status:
        versions = versions.filter(status=status)
    return versions.filter(task=task) if task else versions


def model_version_headline_metrics(
    version: ModelVersion, limit: int = 4
) -> list[tuple[str, float]]:
    """The first few scalar metrics, held-out ("test_...") ones first, each group by name.
    PostgreSQL's jsonb does not keep key order, so the order is decided here."""
    scalars = [
        (name, float(value))
        for name, value in (version.metrics or {}).items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    ]
    scalars.sort(key=lambda item: (not item[0].startswith("test_"), item[0]))
    return scalars[:limit]


def model_version_card(version: ModelVersion) -> list[Any]:
    """The model card sections the app that declares the version's task writes (what it
    reads, its out-of-scope detector, ...); [] when no app describes that kind."""
    from medai_site.registry.catalogue import model_kind_of

    kind = model_kind_of(version.task)
    sections = list(kind.card(version)) if kind is not None and kind.card is not None else []
    return [*sections, model_version_release_record(version=version)]


def model_version_get(*, pk: int) -> ModelVersion:
    """One version with its people; ModelVersion.DoesNotExist when there is none."""
    return ModelVersion.objects.select_related("created_by", "approved_by", "activated_by").get(
        pk=pk
    )


def model_validation_latest(*, version: ModelVersion) -> ModelValidation | None:
    """The version's most recent validation (running or finished), or None."""
    return (
        ModelValidation.objects.filter(version=version)
        .select_related("compared_to", "held_out", "job")
        .order_by("-requested_at", "-id")
        .first()
    )


def model_approval_latest(*, version: ModelVersion) -> ModelApproval | None:
    """The version's most recent approval, or None."""
    return ModelApproval.objects.filter(version=version).select_related("approved_by").first()


def model_version_previous_active(*, task: str) -> ModelVersion | None:
    """The version a roll-back of ``task`` would restore, or None."""
    last = (
        ModelActivation.objects.filter(task=task, version__status=ModelVersion.Status.ACTIVE)
        .select_related("previous")
        .first()
    )
    return last.previous if last is not None else None


def _name(user: Any) -> str:
    return user.get_username() if user is not None else "system"


def validation_summary(validation: ModelValidation) -> str:
    """One line: the metric with its interval and the comparison, or why there is none."""
    if validation.status == ModelValidation.Status.PENDING:
        job = validation.job
        if job is not None and job.status in {"failed", "cancelled"}:
            return f"The validation job {job.get_status_display().lower()}: {job.error}"
        return "Validation running on the held-out set."
    if validation.status == ModelValidation.Status.ERROR:
        return f"Could not be validated: {validation.error}"
    label = (validation.details or {}).get("metric_label") or validation.metric
    text = (
        f"{label} {validation.value:.3f} (95 % CI {validation.ci_low:.3f} to "
        f"{validation.ci_high:.3f}) on {validation.held_out_ref.get('name', 'the held-out set')} "
        f"({validation.held_out_ref.get('size', '?')} items)"
        if validation.value is not None
        and validation.ci_low is not None
        and validation.ci_high is not None
        else f"{label} could not be measured"
    )
    if validation.diff is not None and validation.compared_to is not None:
        how = "paired" if validation.paired else "unpaired, over samples"
        text += (
            f"; vs v{validation.compared_to.version}: {validation.diff:+.3f} "
            f"(95 % CI {validation.diff_low:+.3f} to {validation.diff_high:+.3f}, {how})"
        )
    return text + "."


def model_version_timeline(*, version: ModelVersion) -> list[TimelineEntry]:
    """Everything the governance record holds about ``version``, oldest first: registration,
    validations, approvals (overrides flagged), activations, roll-backs and retirements, then
    entries from registered sources (shadow periods). Staff usernames only; no patient data."""
    entries: list[TimelineEntry] = []
    data = version.training_data or {}
    source = (
        data.get("dataset")
        or data.get("trial")
        or data.get("endpoint")
        or data.get("imported_from")
    )
    entries.append(
        TimelineEntry(
            at=version.created_at,
            kind="registered",
            title=f"Registered v{version.version}",
            text=(
                f"Imported from {data['imported_from']}."
                if data.get("imported_from")
                else f"Trained on {source}."
                if source
                else version.notes or "Registered."
            ),
            actor=_name(version.created_by),
            rows=(("artifact sha256", version.sha256[:16] or "—"),),
        )
    )
    for validation in version.validations.select_related("requested_by", "compared_to").order_by(
        "requested_at", "id"
    ):
        rows: list[tuple[str, str]] = []
        if validation.held_out_ref:
            ref = validation.held_out_ref
            rows.append(
                (
                    "held-out set",
                    f"{ref.get('name')} · {ref.get('size')} items · "
                    f"sha256 {str(ref.get('sha256', ''))[:12]}",
                )
            )
        if validation.verdict:
            rows.append(("rule", validation.verdict))
        for note in (validation.details or {}).get("notes", []):
            rows.append(("note", note))
        for name, value in ((validation.details or {}).get("extra") or {}).items():
            rows.append((name, f"{value:.4g}" if isinstance(value, float) else str(value)))
        if validation.run_seconds is not None:
            rows.append(("run time", f"{validation.run_seconds:.1f} s"))
        entries.append(
            TimelineEntry(
                at=validation.finished_at or validation.requested_at,
                kind="validation",
                title=f"Validation {validation.get_status_display().lower()}",
                text=validation_summary(validation),
                actor=_name(validation.requested_by),
                rows=tuple(rows),
            )
        )
    for approval in version.approvals.select_related("approved_by").order_by("approved_at", "id"):
        entries.append(
            TimelineEntry(
                at=approval.approved_at,
                kind="override" if approval.override else "approval",
                title="Approved with an override" if approval.override else "Approved",
                text=approval.reason,
                actor=_name(approval.approved_by),
                rows=(("validation when approved", approval.validation_status or "none"),),
            )
        )
    activations = ModelActivation.objects.filter(Q(version=version) | Q(previous=version))
    for activation in activations.select_related("activated_by", "version").order_by(
        "activated_at", "id"
    ):
        if activation.version_id == version.pk:
            titles: dict[str, str] = {
                ModelActivation.Kind.ACTIVATED: "Put into service",
                ModelActivation.Kind.BOOTSTRAP: "Put into service (bootstrap: no version in "
                "service, no approval needed)",
                ModelActivation.Kind.ROLLED_BACK: "Restored by a roll-back",
            }
            entries.append(
                TimelineEntry(
                    at=activation.activated_at,
                    kind=activation.kind,
                    title=titles.get(activation.kind, "Put into service"),
                    text=activation.reason,
                    actor=_name(activation.activated_by),
                )
            )
        else:
            rolled = activation.kind == ModelActivation.Kind.ROLLED_BACK
            entries.append(
                TimelineEntry(
                    at=activation.activated_at,
                    kind="rolled_back_from" if rolled else "replaced",
                    title=(
                        f"Rolled back to v{activation.version.version}"
                        if rolled
                        else f"Replaced in service by v{activation.version.version}"
                    ),
                    text=activation.reason,
                    actor=_name(activation.activated_by),
                )
            )
    for source in governance_timeline_sources():
        entries.extend(source.entries(version))
    entries.sort(key=lambda entry: entry.at)
    return entries


def model_version_release_record(*, version: ModelVersion) -> CardSection:
    """The model facts card's "Release record": validation with its interval and comparison,
    who approved it and when (override flagged), in service since, and the shadow record from
    registered sources. Staff usernames only."""
    validation = model_validation_latest(version=version)
    approval = model_approval_latest(version=version)
    rows: list[tuple[str, str]] = []
    if validation is None:
        rows.append(("Validation", "not validated"))
    else:
        rows.append(
            (
                f"Validation ({validation.get_status_display().lower()})",
                validation_summary(validation),
            )
        )
    if approval is not None:
        rows.append(
            (
                "Approved",
                f"by {approval.approved_by.get_username()} on "
                f"{approval.approved_at:%Y-%m-%d %H:%M} UTC",
            )
        )
        rows.append(
            (
                "Override",
                "yes: approved although its validation "
                f"{approval.validation_status or 'had not run'}"
                if approval.override
                else "no",
            )
        )
    else:
        rows.append(("Approved", "not approved"))
    bootstrap = ModelActivation.objects.filter(
        version=version, kind=ModelActivation.Kind.BOOTSTRAP
    ).exists()
    if version.status == ModelVersion.Status.ACTIVE and version.activated_at is not None:
        rows.append(
            (
                "In service since",
                f"{version.activated_at:%Y-%m-%d %H:%M} UTC"
                + (
                    " (first version of its task, put into service without approval)"
                    if bootstrap
                    else ""
                ),
            )
        )
    else:
        rows.append(("In service", f"no ({version.get_status_display().lower()})"))
    shadow = [
        row
        for source in governance_timeline_sources()
        if source.card_rows
        for row in source.card_rows(version)
    ]
    rows.extend(shadow or [("Shadow record", "none recorded")])
    return CardSection(
        key="release",
        title="Release record",
        summary=(
            "How this version was checked and who released it: its score on the task's locked "
            "held-out set compared with the version in service, and the approval by a second "
            "model admin."
        ),
        rows=tuple(rows),
    )
