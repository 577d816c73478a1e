"""Per-process cache of loaded active models for workers.

Each call asks the database which version is active (one indexed query), so an activation or
roll-back in the admin reaches every worker on its next task without a restart.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from medai_site.registry.models import ModelVersion
from medai_site.registry.selectors import model_version_active

T = TypeVar("T")


class NoActiveModel(LookupError):
    """No version of the task is in service."""


class ArtifactCorrupt(RuntimeError):
    """The artifact file does not match the sha256 recorded when it was registered."""


@dataclass(frozen=True)
class LoadedModel(Generic[T]):
    version: ModelVersion
    model: T


_cache: dict[str, LoadedModel] = {}
_lock = threading.Lock()


def load_active_model(task: str, load: Callable[[bytes], T]) -> LoadedModel[T]:
    """The active version of ``task`` loaded by ``load(artifact_bytes)``, cached per process."""
    active = model_version_active(task=task)
    if active is None:
        raise NoActiveModel(
            f"No model version of {task} is active. Ask a model admin to activate one."
        )
    with _lock:
        cached = _cache.get(task)
        if cached is not None and cached.version.pk == active.pk:
            return cached
        with active.artifact.open("rb") as handle:
            content = handle.read()
        if active.sha256 and hashlib.sha256(content).hexdigest() != active.sha256:
            raise ArtifactCorrupt(f"The artifact of {active} does not match its recorded sha256.")
        loaded = LoadedModel(version=active, model=load(content))
        _cache[task] = loaded
        return loaded


def clear_model_cache() -> None:
    """Forget every loaded model (tests, and workers told to free memory)."""
    with _lock:
        _cache.clear()
