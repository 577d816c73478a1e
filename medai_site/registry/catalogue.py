"""Which model tasks exist and how each one's artifact is loaded. Domain apps fill it from
``AppConfig.ready()``; the registry reads it (``import_model_version``) and never imports a
domain app."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
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
class ModelKind:
    """One family of models: its tasks (read when asked: some depend on the database), the
    loader that turns artifact bytes into a model, raising on bytes of any other kind, and
    optionally `describe` (a loaded model -> the metrics an import records, e.g. its input
    contract and detector rates) and `card` (a model version -> its CardSections)."""

    label: str
    tasks: Callable[[], Iterable[str]]
    load: Callable[[bytes], Any]
    describe: Callable[[Any], dict[str, Any]] | None = None
    card: Callable[[Any], list[CardSection]] | None = None
    # Called with the task's name once a version's activation has committed (e.g. to queue
    # work that waited for a model); must be quick and must not raise.
    activated: Callable[[str], None] | None = None


_kinds: list[ModelKind] = []


def model_kind_register(
    *,
    label: str,
    tasks: Callable[[], Iterable[str]],
    load: Callable,
    describe: Callable[[Any], dict[str, Any]] | None = None,
    card: Callable[[Any], list[CardSection]] | None = None,
    activated: Callable[[str], None] | None = None,
) -> None:
    """Declare a family of model tasks, its artifact loader and optionally what an import
    records, what its model card says and what to do once one of its versions is put into
    service (once per app, idempotent)."""
    if not any(kind.label == label for kind in _kinds):
        _kinds.append(
            ModelKind(
                label=label,
                tasks=tasks,
                load=load,
                describe=describe,
                card=card,
                activated=activated,
            )
        )


def model_task_names() -> list[str]:
    """Every task some app declares, sorted."""
    return sorted({task for kind in _kinds for task in kind.tasks()})


def model_kind_of(task: str) -> ModelKind | None:
    """The kind that declares ``task``, or None when no app does."""
    return next((kind for kind in _kinds if task in set(kind.tasks())), None)
