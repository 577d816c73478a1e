"""Which model tasks exist and how each one's artifact is loaded. Domain apps fill it from
``AppConfig.ready()``; the registry reads it (``import_model_version``) and never imports a
domain app."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CardSection:
    """One section of a model card in plain words: a title, a sentence, then (label, value)
    rows. `key` names it for pages and tests (e.g. "contract", "detector")."""

    key: str
    title: str
    summary: str
    rows: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class HeldOutSet:
    """A task's locked held-out set as a family's validation hook names it: a readable name,
    the ids of its items in scoring order, and ``source`` (JSON) telling the same hook how to
    find exactly this set again for the next version of the task."""

    name: str
    item_ids: tuple[str, ...]
    source: dict[str, Any]

    @property
    def size(self) -> int:
        return len(self.item_ids)

    @property
    def sha256(self) -> str:
        """Fingerprint of the items (ids in order): equal only for the same set."""
        return hashlib.sha256("\n".join(self.item_ids).encode()).hexdigest()


@dataclass(frozen=True)
class HeldOutOutputs:
    """What a family's ``validate`` hook returns for one version: per-item outputs on the
    task's held-out set, enough for a paired comparison with another version.

    ``metric`` names one of ``medai_ml.comparison.METRICS`` (auroc: targets {"labels"} and
    scores (n,) or (n, k); c_index: {"time", "event"} and risks; rmse: {"y"} and predictions;
    validity: {} and per-sample 0/1). ``paired`` is False when the items are the version's
    own samples (a generator), not the shared held-out items. ``floor`` is the family's
    minimum acceptable value (a maximum for lower-is-better metrics), ``floor_reason`` why;
    ``extra`` holds secondary metrics shown beside the headline (e.g. novelty, FCD) and
    ``notes`` plain-words caveats shown with the result."""

    held_out: HeldOutSet
    metric: str
    targets: dict[str, Sequence[Any]]
    scores: Sequence[Any]
    paired: bool = True
    floor: float | None = None
    floor_reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelKind:
    """One family of models: its tasks (read when asked: some depend on the database), the
    loader that turns artifact bytes into a model, raising on bytes of any other kind, and
    optionally `describe` (a loaded model -> the metrics an import records, e.g. its input
    contract and detector rates), `card` (a model version -> its CardSections) and
    `validate` ((model version, the task's locked held-out ``source`` or None for the first)
    -> HeldOutOutputs on that set; raises ValueError with a plain message when it cannot)."""

    label: str
    tasks: Callable[[], Iterable[str]]
    load: Callable[[bytes], Any]
    describe: Callable[[Any], dict[str, Any]] | None = None
    card: Callable[[Any], list[CardSection]] | None = None
    # Called with the task's name once a version's activation has committed (e.g. to queue
    # work that waited for a model); must be quick and must not raise.
    activated: Callable[[str], None] | None = None
    validate: Callable[[Any, dict[str, Any] | None], HeldOutOutputs] | None = None


_kinds: list[ModelKind] = []


def model_kind_register(
    *,
    label: str,
    tasks: Callable[[], Iterable[str]],
    load: Callable,
    describe: Callable[[Any], dict[str, Any]] | None = None,
    card: Callable[[Any], list[CardSection]] | None = None,
    activated: Callable[[str], None] | None = None,
    validate: Callable[[Any, dict[str, Any] | None], HeldOutOutputs] | None = None,
) -> None:
    """Declare a family of model tasks, its artifact loader and optionally what an import
    records, what its model card says, what to do once one of its versions is put into
    service and how a version is validated on the task's locked held-out set (once per app,
    idempotent)."""
    if not any(kind.label == label for kind in _kinds):
        _kinds.append(
            ModelKind(
                label=label,
                tasks=tasks,
                load=load,
                describe=describe,
                card=card,
                activated=activated,
                validate=validate,
            )
        )


def model_task_names() -> list[str]:
    """Every task some app declares, sorted."""
    return sorted({task for kind in _kinds for task in kind.tasks()})


def model_kind_of(task: str) -> ModelKind | None:
    """The kind that declares ``task``, or None when no app does."""
    return next((kind for kind in _kinds if task in set(kind.tasks())), None)
