"""The governance timeline's hook: other parts of the platform (shadow mode) add entries to a
version's timeline and rows to its release record without the registry importing them.

A source registers once (from its AppConfig.ready()) with ``governance_timeline_register``:
``entries(version)`` -> the TimelineEntry items it knows for that version (e.g. shadow
periods), and optionally ``card_rows(version)`` -> (label, value) rows for the release record
on the model facts card that clinicians read (e.g. "Shadow record")."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class TimelineEntry:
    """One event in a version's governance record. ``kind`` names its family for pages and
    tests (registered, validation, approval, override, activated, bootstrap, rolled_back,
    retired, shadow...); ``actor`` is a staff username or "" (never a patient)."""

    at: datetime
    kind: str
    title: str
    text: str = ""
    actor: str = ""
    rows: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TimelineSource:
    key: str
    entries: Callable[[Any], Iterable[TimelineEntry]]
    card_rows: Callable[[Any], Iterable[tuple[str, str]]] | None = None


_sources: dict[str, TimelineSource] = {}


def governance_timeline_register(
    *,
    key: str,
    entries: Callable[[Any], Iterable[TimelineEntry]],
    card_rows: Callable[[Any], Iterable[tuple[str, str]]] | None = None,
) -> None:
    """Add a source of timeline entries (and release-record rows) under ``key``; registering
    the same key again replaces it (idempotent across repeated ready() calls)."""
    _sources[key] = TimelineSource(key=key, entries=entries, card_rows=card_rows)


def governance_timeline_sources() -> list[TimelineSource]:
    """Every registered source, by key."""
    return [_sources[key] for key in sorted(_sources)]
