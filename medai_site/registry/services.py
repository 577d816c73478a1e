"""Every write to the model registry: register, validate, approve, activate, roll back, retire.

Governance: a registered version is validated automatically on its task's locked held-out set
(a registry.validate job); a second model admin approves it with a reason (never the one who
trained or imported it; a failed or unfinished validation needs a recorded override); only an
approved version goes into service, except the first of a task that never had one in service
(bootstrap, recorded as such)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.core.roles import Role, has_role
from medai_site.registry.catalogue import model_kind_of
from medai_site.registry.models import (
    ModelActivation,
    ModelApproval,
    ModelHeldOut,
    ModelShadow,
    ModelValidation,
    ModelVersion,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# Artifact files written inside a caller's transaction, per thread, while a guard watches.
_guarded = threading.local()

REASON_MAX = 500
# What a training form's "put into service when done" box does now (every app's form says it).
ACTIVATE_HELP = (
    "Only when no version of this task has ever been in service (first start); otherwise the "
    "new version is validated on its held-out set and awaits a second model admin's approval "
    "on its governance page."
)
BOOTSTRAP_NOTE = "bootstrap: no version in service"


def model_version_register(
    *,
    task: str,
    artifact: bytes | Path | None,
    created_by: User,
    params: dict[str, Any] | None = None,
    training_data: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    notes: str = "",
) -> ModelVersion:
    """Store a new version (status ready) with the next version number for ``task``. The
    artifact file and the row exist together or not at all: a failure while saving either
    removes the file it wrote."""
    content = Path(artifact).read_bytes() if isinstance(artifact, Path) else artifact
    version = ModelVersion(
        task=task,
        status=ModelVersion.Status.READY,
        sha256=hashlib.sha256(content).hexdigest() if content else "",
        params=params or {},
        training_data=training_data or {},
        metrics=metrics or {},
        notes=notes,
        created_by=created_by,
    )
    try:
        with transaction.atomic():
            # Lock the task's existing versions so two training runs finishing together do
            # not both take the same number (the unique constraint is the backstop).
            existing = ModelVersion.objects.select_for_update().filter(task=task)
            version.version = (existing.aggregate(top=Max("version"))["top"] or 0) + 1
            if content:
                version.artifact.save("artifact.bin", ContentFile(content), save=False)
            version.save()
    except BaseException:
        # The row was rolled back, so the file it would have pointed to must go too.
        if version.artifact.name:
            version.artifact.storage.delete(version.artifact.name)
        version.pk = None
        raise
    names = getattr(_guarded, "names", None)
    if names is not None and version.artifact.name and transaction.get_connection().in_atomic_block:
        names.append(version.artifact.name)
    if settings.MEDAI_VALIDATE_ON_REGISTER and _validatable(version.task) and created_by:
        # Every way in (training, import, seed) is validated the same way; the job is sent
        # when the caller's transaction commits, so a rolled-back version queues nothing.
        model_validation_start(version=version, user=created_by)
    return version


def _validatable(task: str) -> bool:
    from medai_site.registry.catalogue import model_kind_of

    kind = model_kind_of(task)
    return kind is not None and kind.validate is not None


@contextmanager
def model_artifacts_guard() -> Iterator[None]:
    """Wrap a transaction that registers versions (e.g. a job's finishing block): if it rolls
    back, the artifact files those versions wrote are removed too. Django has no rollback
    hook, so the files are collected while the guard is open."""
    outer = getattr(_guarded, "names", None)
    _guarded.names = []
    try:
        yield
    except BaseException:
        for name in _guarded.names:
            if not ModelVersion.objects.filter(artifact=name).exists():
                ModelVersion.artifact.field.storage.delete(name)
        raise
    else:
        if outer is not None:
            outer.extend(_guarded.names)
    finally:
        _guarded.names = outer


def _reason(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(f"Give a reason for {what}: it is kept in the version's record.")
    if len(reason) > REASON_MAX:
        raise ValidationError(f"Keep the reason under {REASON_MAX} characters.")
    return reason


def model_task_bootstrappable(*, task: str) -> bool:
    """Whether ``task`` has never had a version in service (its first may then go into
    service without an approval: first start, seed_demo)."""
    return not ModelActivation.objects.filter(task=task).exists()


def _activate(
    *, version: ModelVersion, user: User, reason: str, kind: str = ModelActivation.Kind.ACTIVATED
) -> ModelVersion:
    current = (
        ModelVersion.objects.select_for_update()
        .filter(task=version.task, status=ModelVersion.Status.ACTIVE)
        .first()
    )
    if current is not None and current.pk == version.pk:
        return current
    if version.status not in {ModelVersion.Status.READY, ModelVersion.Status.RETIRED}:
        raise ValidationError(
            f"{version} is {version.get_status_display().lower()}; only a ready or retired "
            "version can be put into service."
        )
    if version.artifact and not version.artifact.storage.exists(version.artifact.name):
        raise ValidationError(f"{version} cannot be activated: its artifact file is missing.")
    now = timezone.now()
    if current is not None:
        current.status = ModelVersion.Status.RETIRED
        current.save(update_fields=["status"])
    version.status = ModelVersion.Status.ACTIVE
    version.activated_by = user
    version.activated_at = now
    version.save(update_fields=["status", "activated_by", "activated_at"])
    # A version in shadow that goes into service stops shadowing: it is the active one now.
    ModelShadow.objects.filter(version=version, stopped_at__isnull=True).update(
        stopped_at=now, stopped_by=user, stop_reason="put into service"
    )
    ModelActivation.objects.create(
        task=version.task,
        version=version,
        previous=current,
        activated_by=user,
        activated_at=now,
        kind=kind,
        reason=reason,
    )
    family = model_kind_of(version.task)
    if family is not None and family.activated is not None:
        transaction.on_commit(partial(family.activated, version.task))
    return version


def model_version_activate(
    *, version: ModelVersion, user: User, reason: str, request: Any = None
) -> ModelVersion:
    """Put an approved ``version`` into service with ``reason``, retiring the task's current
    one; idempotent for the version already in service. Without an approval it is refused,
    except the first version of a task that never had one in service (recorded as
    bootstrap). ValidationError with the reason when refused."""
    reason = _reason(reason, "putting a version into service")
    with transaction.atomic():
        # The task's lock: two activations (or an activation and a roll-back) of one task
        # serialise here, so the bootstrap check cannot race.
        list(ModelVersion.objects.select_for_update().filter(task=version.task).values("pk"))
        version = ModelVersion.objects.get(pk=version.pk)
        if version.status == ModelVersion.Status.ACTIVE:
            return version
        kind = ModelActivation.Kind.ACTIVATED
        if not version.approvals.exists():
            if not model_task_bootstrappable(task=version.task):
                raise ValidationError(
                    f"{version} has not been approved. A second model admin (not the one who "
                    "trained or imported it) must approve it, with a reason, before it goes "
                    "into service."
                )
            kind = ModelActivation.Kind.BOOTSTRAP
            reason = f"{BOOTSTRAP_NOTE}; {reason}"
        activated = _activate(version=version, user=user, reason=reason, kind=kind)
        audit_record(
            action=AuditEvent.Action.MODEL_ACTIVATED,
            actor=user,
            request=request,
            obj=activated,
            detail={"reason": reason, "kind": kind},
        )
    return activated


@transaction.atomic
def model_version_publish(
    *,
    task: str,
    artifact: bytes | Path | None,
    created_by: User,
    activate: bool,
    params: dict[str, Any] | None = None,
    training_data: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    notes: str = "",
) -> ModelVersion:
    """Register a new version of ``task`` (validation is queued) and, when ``activate`` and
    the task has never had a version in service, put it into service as ``created_by``
    (bootstrap); otherwise it waits for a second model admin's approval. Returns the stored
    version (active or ready). Each call adds a version."""
    version = model_version_register(
        task=task,
        artifact=artifact,
        created_by=created_by,
        params=params,
        training_data=training_data,
        metrics=metrics,
        notes=notes,
    )
    if activate and model_task_bootstrappable(task=task):
        try:
            version = model_version_activate(
                version=version, user=created_by, reason="activated when registered"
            )
        except ValidationError:
            if model_task_bootstrappable(task=task):
                raise
            # Another first version of the task went into service while this one waited
            # for the task's lock: this one is registered and awaits approval instead.
    return version


def model_version_trained_summary(*, version: ModelVersion, finding: str = "") -> str:
    """A training job's one-line summary: the version, its headline ``finding`` and whether it
    is now in service or awaiting validation and a second model admin's approval."""
    in_service = version.status == ModelVersion.Status.ACTIVE
    return (
        f"Trained {version}"
        + (f": {finding}" if finding else "")
        + (" (now in service)." if in_service else AWAITING_APPROVAL)
    )


AWAITING_APPROVAL = (
    " (awaiting approval: it goes into service once a second model admin has approved it, "
    "with its held-out validation in view, on its governance page)."
)


def model_version_rollback(
    *, task: str, user: User, reason: str, request: Any = None
) -> ModelVersion:
    """Return ``task`` to the version that was active before the current one, with
    ``reason``; new work uses it at once (workers' caches key on the version in service).
    ValidationError when there is none to return to."""
    reason = _reason(reason, "rolling back")
    with transaction.atomic():
        last = (
            ModelActivation.objects.select_for_update(of=("self",))
            .filter(task=task, version__status=ModelVersion.Status.ACTIVE)
            .select_related("version")
            .first()
        )
        if last is None or last.previous is None:
            raise ValidationError(f"{task} has no earlier version to roll back to.")
        target = ModelVersion.objects.select_for_update().get(pk=last.previous.pk)
        restored = _activate(
            version=target,
            user=user,
            reason=f"rolled back from v{last.version.version}: {reason}",
            kind=ModelActivation.Kind.ROLLED_BACK,
        )
        audit_record(
            action=AuditEvent.Action.MODEL_ROLLED_BACK,
            actor=user,
            request=request,
            obj=restored,
            detail={"from_version": last.version.version, "reason": reason},
        )
    return restored


def model_version_retire(*, version: ModelVersion, user: User, request: Any = None) -> ModelVersion:
    """Take a version out of service without activating another; idempotent."""
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=version.pk)
        if version.status in {ModelVersion.Status.ACTIVE, ModelVersion.Status.READY}:
            version.status = ModelVersion.Status.RETIRED
            version.save(update_fields=["status"])
            audit_record(
                action=AuditEvent.Action.RECORD_CHANGED,
                actor=user,
                request=request,
                obj=version,
                detail={"status": "retired"},
            )
    return version


def model_version_import(
    *,
    task: str,
    artifact: bytes,
    created_by: User,
    activate: bool = False,
    notes: str = "",
    source_name: str = "",
) -> ModelVersion:
    """Register an artifact trained elsewhere as a new version of ``task`` (validation is
    queued); ``activate`` puts it into service only when the task never had a version in
    service (bootstrap), else it awaits approval. ValidationError when no app declares
    ``task`` (the message lists those that do) or the artifact does not load as that task's
    model; on any failure no row and no file remain."""
    from medai_site.registry.catalogue import model_task_names

    kind = model_kind_of(task)
    if kind is None:
        known = ", ".join(model_task_names()) or "none"
        raise ValidationError(f"No app declares the model task {task!r}. Known tasks: {known}.")
    try:
        model = kind.load(artifact)
    except Exception as exc:  # loaders raise many types for bytes of another kind
        raise ValidationError(
            f"The artifact does not load as a {kind.label} ({task}): {exc}"
        ) from None
    classes = getattr(model, "class_names", None)
    # What the artifact itself says about its applicability (input contract, detector and
    # its measured rates), so an imported version's card states it like a trained one's.
    metrics = dict(kind.describe(model)) if kind.describe is not None else {}
    written = ""
    try:
        with transaction.atomic():
            version = model_version_register(
                task=task,
                artifact=artifact,
                created_by=created_by,
                params=dict(getattr(model, "config", None) or {}),
                metrics=metrics,
                notes=notes,
                training_data={
                    "imported_from": source_name,
                    **({"classes": list(classes)} if classes else {}),
                },
            )
            written = version.artifact.name
            if activate and model_task_bootstrappable(task=task):
                version = model_version_activate(
                    version=version, user=created_by, reason="activated when imported"
                )
    except BaseException:
        # The version's transaction rolled back (e.g. activation failed): its file goes too.
        if written:
            ModelVersion.artifact.field.storage.delete(written)
        raise
    return version


def model_validation_start(
    *, version: ModelVersion, user: User, request: Any = None
) -> ModelValidation:
    """Queue a registry.validate job for ``version`` (no patient data, ml queue); idempotent:
    while one is pending it is returned and nothing new is queued."""
    from medai_site.jobs.models import Job
    from medai_site.jobs.services import job_create

    with transaction.atomic():
        pending = (
            ModelValidation.objects.select_for_update(of=("self",))
            .filter(version=version, status=ModelValidation.Status.PENDING)
            .select_related("job")
            .first()
        )
        if (
            pending is not None
            and pending.job is not None
            and pending.job.status
            in {
                Job.Status.FAILED,
                Job.Status.CANCELLED,
            }
        ):
            # Its job gave up (a worker died on every attempt, or it was cancelled): the run
            # is recorded as not run, so a new one can be queued.
            model_validation_fail(
                validation=pending,
                error=f"The validation job {pending.job.get_status_display().lower()}: "
                f"{pending.job.error or 'no reason recorded'}",
            )
            pending = None
        if pending is not None:
            return pending
        try:
            with transaction.atomic():
                validation = ModelValidation.objects.create(
                    version=version, requested_by=user, requested_at=timezone.now()
                )
        except IntegrityError:
            # Another request queued one between the check and the insert.
            return ModelValidation.objects.get(
                version=version, status=ModelValidation.Status.PENDING
            )
        validation.job = job_create(
            kind="registry.validate",
            owner=user,
            title=f"Validate {version} on its held-out set",
            params={"validation_id": validation.pk},
            target=version,
        )
        validation.save(update_fields=["job"])
        if request is not None:
            audit_record(
                action=AuditEvent.Action.MODEL_VALIDATION_REQUESTED,
                actor=user,
                request=request,
                obj=version,
            )
    return validation


@transaction.atomic
def model_validation_store(*, validation: ModelValidation, result: Any) -> ModelValidation:
    """Write a computed validation (``registry.validation.ValidationResult``) on its row,
    locking the task's held-out set when it is the task's first; call inside the job's
    finishing transaction. A row no longer pending is left as it is (idempotent)."""
    from medai_site.registry.validation import validation_fields

    row = ModelValidation.objects.select_for_update().get(pk=validation.pk)
    if row.status != ModelValidation.Status.PENDING:
        return row
    held = result.outputs.held_out
    locked, _ = ModelHeldOut.objects.get_or_create(
        task=row.version.task,
        defaults={
            "name": held.name,
            "size": held.size,
            "sha256": held.sha256,
            "source": held.source,
            "locked_at": timezone.now(),
        },
    )
    fields = validation_fields(result)
    if locked.sha256 != held.sha256 and result.same_set:
        # Locked by a concurrent first validation with another set: refuse, never mix sets.
        fields.update(status=ModelValidation.Status.FAILED, passed=False)
        fields["verdict"] = (
            f"Refused: the task's held-out set was locked as {locked} meanwhile; validate again."
        )
        fields["compared_to"] = None
    for name, value in fields.items():
        setattr(row, name, value)
    row.held_out = locked if locked.sha256 == held.sha256 else None
    row.finished_at = timezone.now()
    row.save()
    return row


@transaction.atomic
def model_validation_fail(*, validation: ModelValidation, error: str) -> ModelValidation:
    """Record that a validation could not be run (the message says why); idempotent."""
    row = ModelValidation.objects.select_for_update().get(pk=validation.pk)
    if row.status == ModelValidation.Status.PENDING:
        row.status = ModelValidation.Status.ERROR
        row.passed = False
        row.error = error[:2000]
        row.finished_at = timezone.now()
        row.save(update_fields=["status", "passed", "error", "finished_at"])
    return row


def model_version_approve(
    *, version: ModelVersion, user: User, reason: str, override: bool = False, request: Any = None
) -> ModelApproval:
    """Record ``user``'s approval of ``version`` with ``reason`` (four eyes). Refused with a
    ValidationError to anyone but a model admin, to the one who trained or imported it, for
    a version that cannot go into service, and, unless ``override``, for a version whose
    latest validation failed, could not run or has not finished. Each call adds a row."""
    if not has_role(user, Role.MODEL_ADMIN):
        raise ValidationError("Only a model admin can approve a model version.")
    reason = _reason(reason, "the approval")
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=version.pk)
        if version.created_by_id is not None and version.created_by_id == user.pk:
            raise ValidationError(
                f"You trained or imported {version}; a second model admin must approve it "
                "(four eyes)."
            )
        if version.status in {ModelVersion.Status.TRAINING, ModelVersion.Status.FAILED}:
            raise ValidationError(f"{version} is {version.get_status_display().lower()}.")
        latest = version.validations.order_by("-requested_at", "-id").first()
        state = latest.status if latest is not None else "none"
        if state != ModelValidation.Status.PASSED and not override:
            why = {
                "none": "has not been validated",
                ModelValidation.Status.PENDING: "is still being validated",
                ModelValidation.Status.FAILED: "failed its validation",
                ModelValidation.Status.ERROR: "could not be validated",
            }[state]
            raise ValidationError(
                f"{version} {why}. Approve it anyway only with the override, which is recorded "
                "with your reason."
            )
        now = timezone.now()
        approval = ModelApproval.objects.create(
            version=version,
            approved_by=user,
            approved_at=now,
            reason=reason,
            # An override of a passed validation is no override: record what happened.
            override=override and state != ModelValidation.Status.PASSED,
            validation=latest,
            validation_status=state,
        )
        version.approved_by = user
        version.approved_at = now
        version.save(update_fields=["approved_by", "approved_at"])
        audit_record(
            action=AuditEvent.Action.MODEL_APPROVED,
            actor=user,
            request=request,
            obj=version,
            detail={"reason": reason, "override": approval.override, "validation": state},
        )
    return approval
