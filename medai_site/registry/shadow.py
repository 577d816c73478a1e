"""Shadow mode: an approved version scores live traffic beside the active version; its answers
are stored (ShadowResult) for the agreement dashboard and never shown to clinicians.

The direction of the hook: the registry never imports a domain app. Each family declares from
its ``AppConfig.ready()`` which of its tasks can run in shadow (``shadow_family_register``),
and each family's worker, after the active result is committed, calls ``shadow_run`` with the
items it has just scored and a ``score`` callable that runs a loaded shadow model on them.
``shadow_run`` never raises: a shadow failure is logged and counted on the shadow period.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.registry.models import ModelShadow, ModelVersion, ShadowResult
from medai_site.registry.selectors import model_version_active

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShadowFamily:
    """A family of models that can (or, with ``scores_live`` False, cannot) run in shadow:
    ``note`` says on the dashboard what is compared and ``reference`` what the clinician
    label is ("" when clinicians give none)."""

    label: str
    tasks: Callable[[], Iterable[str]]
    scores_live: bool = True
    note: str = ""
    reference: str = ""


_families: list[ShadowFamily] = []


def shadow_family_register(
    *,
    label: str,
    tasks: Callable[[], Iterable[str]],
    scores_live: bool = True,
    note: str = "",
    reference: str = "",
) -> None:
    """Declare which tasks of a family its workers score in shadow (once per label)."""
    if not any(family.label == label for family in _families):
        _families.append(
            ShadowFamily(
                label=label, tasks=tasks, scores_live=scores_live, note=note, reference=reference
            )
        )


def shadow_family_of(task: str) -> ShadowFamily | None:
    """The family that declares ``task`` for shadow mode, or None."""
    return next((f for f in _families if task in set(f.tasks())), None)


@dataclass(frozen=True)
class ShadowItem:
    """One live item the active version has just answered. ``item_type``/``item_id`` name the
    domain's row (never a patient identifier); ``payload`` is what the shadow model reads (the
    same preprocessed input) and is never stored."""

    item_type: str
    item_id: str
    active_label: str
    active_score: float | None = None
    active_output: dict[str, Any] = field(default_factory=dict)
    payload: Any = None


@dataclass(frozen=True)
class ShadowAnswer:
    """A shadow model's answer for one item, comparable to the active one by ``label``."""

    label: str
    score: float | None = None
    output: dict[str, Any] = field(default_factory=dict)


# Loaded shadow models per process, by version: a shadow is scored on every live batch, so
# loading its artifact each time would cost more than the scoring.
_models: dict[int, Any] = {}
_models_lock = threading.Lock()


def _shadow_model(version: ModelVersion, load: Callable[[bytes], Any]) -> Any:
    with _models_lock:
        if version.pk in _models:
            return _models[version.pk]
        with version.artifact.open("rb") as handle:
            content = handle.read()
        if version.sha256 and hashlib.sha256(content).hexdigest() != version.sha256:
            raise ValueError(f"the artifact of {version} does not match its recorded sha256")
        model = load(content)
        # Only the shadows running now are kept: a stopped one frees its memory.
        running = set(
            ModelShadow.objects.filter(stopped_at__isnull=True).values_list("version", flat=True)
        )
        for pk in [pk for pk in _models if pk not in running]:
            del _models[pk]
        _models[version.pk] = model
        return model


def shadow_models_clear() -> None:
    """Forget every loaded shadow model (tests)."""
    with _models_lock:
        _models.clear()


def shadow_versions_for(*, task: str) -> list[ModelShadow]:
    """The shadows running for ``task`` (with their versions); [] when none (one query)."""
    return list(
        ModelShadow.objects.filter(task=task, stopped_at__isnull=True).select_related("version")
    )


def _failed(shadow: ModelShadow, exc: BaseException) -> None:
    logger.exception("shadow scoring by %s failed", shadow.version)
    try:
        ModelShadow.objects.filter(pk=shadow.pk).update(
            failures=F("failures") + 1, last_error=f"{type(exc).__name__}: {exc}"[:300]
        )
    except Exception:  # the database may be what failed; the log line above stays
        logger.exception("could not count the failure of %s", shadow)


def shadow_run(
    *,
    task: str,
    active_version: ModelVersion,
    items: Sequence[ShadowItem],
    load: Callable[[bytes], Any],
    score: Callable[[ModelVersion, Any, list[ShadowItem]], Sequence[ShadowAnswer]],
) -> int:
    """Score ``items`` (already answered and stored by ``active_version``) with every shadow
    of ``task`` running now and store the answers; returns how many were stored. Never raises
    (a failure is logged and counted on the shadow); idempotent per (shadow version, item)."""
    try:
        shadows = shadow_versions_for(task=task) if items else []
    except Exception as exc:
        logger.exception("could not read the shadows of %s: %s", task, exc)
        return 0
    stored = 0
    for shadow in shadows:
        # A shadow put into service meanwhile would only be compared with itself.
        if shadow.version_id == active_version.pk:
            continue
        try:
            stored += _shadow_score(
                shadow=shadow, active_version=active_version, items=items, load=load, score=score
            )
        except Exception as exc:
            _failed(shadow, exc)
    return stored


def _shadow_score(
    *,
    shadow: ModelShadow,
    active_version: ModelVersion,
    items: Sequence[ShadowItem],
    load: Callable[[bytes], Any],
    score: Callable[[ModelVersion, Any, list[ShadowItem]], Sequence[ShadowAnswer]],
) -> int:
    version = shadow.version
    done = set(
        ShadowResult.objects.filter(
            shadow_version=version,
            item_type__in={i.item_type for i in items},
            item_id__in=[str(i.item_id) for i in items],
        ).values_list("item_type", "item_id")
    )
    unscored = [i for i in items if (i.item_type, str(i.item_id)) not in done]
    if not unscored:
        return 0
    answers = list(score(version, _shadow_model(version, load), unscored))
    if len(answers) != len(unscored):
        raise ValueError(f"the shadow scorer returned {len(answers)} answers for {len(unscored)}")
    family = shadow_family_of(shadow.task)
    now = timezone.now()
    rows = [
        ShadowResult(
            shadow=shadow,
            shadow_version=version,
            active_version=active_version,
            task=shadow.task,
            family=family.label if family else "",
            item_type=item.item_type,
            item_id=str(item.item_id),
            shadow_label=answer.label[:80],
            active_label=item.active_label[:80],
            shadow_score=answer.score,
            active_score=item.active_score,
            shadow_output=answer.output,
            active_output=item.active_output,
            agrees=answer.label == item.active_label,
            created_at=now,
        )
        for item, answer in zip(unscored, answers, strict=True)
    ]
    # A concurrent worker may have stored some of these: the unique key keeps one of each.
    ShadowResult.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


@transaction.atomic
def shadow_results_label(*, item_type: str, item_id: str | int, label: str) -> int:
    """Record a clinician's label (e.g. a review's class) on every shadow result of the item,
    replacing an earlier one (a corrected review); returns the rows changed."""
    return ShadowResult.objects.filter(item_type=item_type, item_id=str(item_id)).update(
        clinician_label=label[:80], labelled_at=timezone.now()
    )


def _refuse(message: str) -> NoReturn:
    raise ValidationError(message)


def model_version_shadow_start(
    *, version: ModelVersion, user: User, reason: str, request: Any = None
) -> ModelShadow:
    """Start scoring live traffic of ``version``'s task with ``version`` beside the active one;
    ValidationError unless the version is approved, not active, of a task with an active
    version and a family that scores live traffic, with no other shadow running. Idempotent:
    the shadow already running for this version is returned. Audited."""
    reason = (reason or "").strip()
    if not reason:
        _refuse("Say why this version should run in shadow.")
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=version.pk)
        running = ModelShadow.objects.filter(task=version.task, stopped_at__isnull=True).first()
        if running is not None and running.version_id == version.pk:
            return running
        family = shadow_family_of(version.task)
        if family is None:
            _refuse(f"No live path scores {version.task} in shadow.")
        elif not family.scores_live:
            _refuse(f"{version} cannot run in shadow: {family.note}")
        if version.approved_by_id is None:
            _refuse(f"{version} is not approved: a second model admin must approve it first.")
        if version.status == ModelVersion.Status.ACTIVE:
            _refuse(f"{version} is the active version; only another version can shadow it.")
        if version.status not in {ModelVersion.Status.READY, ModelVersion.Status.RETIRED}:
            _refuse(f"{version} is {version.get_status_display().lower()}.")
        active = model_version_active(task=version.task)
        if active is None:
            _refuse(f"{version.task} has no active version to compare a shadow with.")
        if running is not None:
            _refuse(
                f"{running.version} is already running in shadow for {version.task}; stop it "
                "first (one shadow per task keeps agreement with the active version readable)."
            )
        if version.artifact and not version.artifact.storage.exists(version.artifact.name):
            _refuse(f"{version} cannot run in shadow: its artifact file is missing.")
        try:
            with transaction.atomic():
                shadow = ModelShadow.objects.create(
                    version=version,
                    task=version.task,
                    started_by=user,
                    started_at=timezone.now(),
                    reason=reason[:200],
                )
        except IntegrityError:
            # Another admin started a shadow of this task a moment ago.
            _refuse(f"Another version of {version.task} was just put in shadow; reload.")
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=user,
            request=request,
            obj=version,
            detail={
                "shadow": "started",
                "reason": reason[:200],
                "active_version": active.version if active else None,
            },
        )
    return shadow


def model_version_shadow_stop(
    *, version: ModelVersion, user: User, reason: str = "", request: Any = None
) -> ModelShadow | None:
    """Stop ``version``'s running shadow (its results stay for the dashboard); returns the
    stopped period, or None when it was not running (idempotent). Audited when it stops."""
    reason = (reason or "").strip()
    with transaction.atomic():
        shadow = (
            ModelShadow.objects.select_for_update()
            .filter(version=version, stopped_at__isnull=True)
            .first()
        )
        if shadow is None:
            return None
        shadow.stopped_at = timezone.now()
        shadow.stopped_by = user
        shadow.stop_reason = reason[:200]
        shadow.save(update_fields=["stopped_at", "stopped_by", "stop_reason"])
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=user,
            request=request,
            obj=version,
            detail={
                "shadow": "stopped",
                "reason": reason[:200],
                "scored": shadow.results.count(),
            },
        )
    return shadow
