"""Which model tasks exist and how each one's artifact is loaded. Domain apps fill it from
``AppConfig.ready()``; the registry reads it (``import_model_version``) and never imports a
domain app."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelKind:
    """One family of models: its tasks (read when asked: some depend on the database) and the
    loader that turns artifact bytes into a model, raising on bytes of any other kind."""

    label: str
    tasks: Callable[[], Iterable[str]]
    load: Callable[[bytes], Any]


_kinds: list[ModelKind] = []


def model_kind_register(*, label: str, tasks: Callable[[], Iterable[str]], load: Callable) -> None:
    """Declare a family of model tasks and its artifact loader (once per app, idempotent)."""
    if not any(kind.label == label for kind in _kinds):
        _kinds.append(ModelKind(label=label, tasks=tasks, load=load))


def model_task_names() -> list[str]:
    """Every task some app declares, sorted."""
    return sorted({task for kind in _kinds for task in kind.tasks()})


def model_kind_of(task: str) -> ModelKind | None:
    """The kind that declares ``task``, or None when no app does."""
    return next((kind for kind in _kinds if task in set(kind.tasks())), None)
