"""Reads of the model registry."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from medai_site.registry.models import ModelVersion


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
    return list(kind.card(version)) if kind is not None and kind.card is not None else []
