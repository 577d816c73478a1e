"""Every write to the model registry: register, activate, roll back, retire."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.registry.catalogue import model_kind_of
from medai_site.registry.models import ModelActivation, ModelVersion

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# Artifact files written inside a caller's transaction, per thread, while a guard watches.
_guarded = threading.local()


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
    return version


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


def _activate(*, version: ModelVersion, user: User, reason: str) -> ModelVersion:
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
    if version.approved_by_id is None:
        version.approved_by = user
    version.save(update_fields=["status", "activated_by", "activated_at", "approved_by"])
    ModelActivation.objects.create(
        task=version.task,
        version=version,
        previous=current,
        activated_by=user,
        activated_at=now,
        reason=reason,
    )
    kind = model_kind_of(version.task)
    if kind is not None and kind.activated is not None:
        transaction.on_commit(partial(kind.activated, version.task))
    return version


def model_version_activate(
    *, version: ModelVersion, user: User, request: Any = None
) -> ModelVersion:
    """Put ``version`` into service, retiring the task's current active version; idempotent."""
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=version.pk)
        activated = _activate(version=version, user=user, reason="activated")
        audit_record(
            action=AuditEvent.Action.MODEL_ACTIVATED, actor=user, request=request, obj=activated
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
    """Register a new version of ``task`` and, when ``activate``, put it into service as
    ``created_by``; returns the stored version (active or ready). Each call adds a version."""
    version = model_version_register(
        task=task,
        artifact=artifact,
        created_by=created_by,
        params=params,
        training_data=training_data,
        metrics=metrics,
        notes=notes,
    )
    if activate:
        version = model_version_activate(version=version, user=created_by)
    return version


def model_version_trained_summary(*, version: ModelVersion, finding: str = "") -> str:
    """A training job's one-line summary: the version, its headline ``finding`` and whether it
    is now in service."""
    in_service = version.status == ModelVersion.Status.ACTIVE
    return (
        f"Trained {version}"
        + (f": {finding}" if finding else "")
        + (" (now in service)." if in_service else ".")
    )


def model_version_rollback(*, task: str, user: User, request: Any = None) -> ModelVersion:
    """Return ``task`` to the version that was active before the current one."""
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
            version=target, user=user, reason=f"rolled back from v{last.version.version}"
        )
        audit_record(
            action=AuditEvent.Action.MODEL_ROLLED_BACK,
            actor=user,
            request=request,
            obj=restored,
            detail={"from_version": last.version.version},
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
    """Register (and optionally activate) an artifact trained elsewhere as a new version of
    ``task``. ValidationError when no app declares ``task`` (the message lists those that
    do) or the artifact does not load as that task's model; on any failure no row and no
    file remain."""
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
            if activate:
                model_version_activate(version=version, user=created_by)
    except BaseException:
        # The version's transaction rolled back (e.g. activation failed): its file goes too.
        if written:
            ModelVersion.artifact.field.storage.delete(written)
        raise
    return version
