"""The patient page is a timeline that each clinical app adds to.

An app registers, in its AppConfig.ready(), an entry provider (events for the chronological
timeline) and/or a panel provider (a block on the patient page: latest scans, vitals, plans).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from medai_site.patients.models import Patient

if TYPE_CHECKING:
    from medai_site.core.roles import AnyUser


@dataclass(frozen=True)
class TimelineEntry:
    when: datetime
    title: str
    detail: str = ""
    url: str = ""
    section: str = "Record"


@dataclass(frozen=True)
class Panel:
    title: str
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    order: int = 100


EntryProvider = Callable[[Patient, Any], Iterable[TimelineEntry]]
PanelProvider = Callable[[Patient, Any], Panel | None]

_entry_providers: list[EntryProvider] = []
_panel_providers: list[PanelProvider] = []


def register_entries(provider: EntryProvider) -> EntryProvider:
    """Add a source of timeline entries (usable as a decorator)."""
    if provider not in _entry_providers:
        _entry_providers.append(provider)
    return provider


def register_panel(provider: PanelProvider) -> PanelProvider:
    """Add a panel to the patient page (usable as a decorator)."""
    if provider not in _panel_providers:
        _panel_providers.append(provider)
    return provider


def patient_timeline(*, patient: Patient, user: AnyUser, limit: int = 200) -> list[TimelineEntry]:
    """Every app's entries for the patient, newest first."""
    entries = [entry for provider in _entry_providers for entry in provider(patient, user)]
    entries.sort(key=lambda entry: entry.when, reverse=True)
    return entries[:limit]


def patient_panels(*, patient: Patient, user: AnyUser) -> list[Panel]:
    """Every app's panel for the patient page, in display order."""
    panels = [panel for provider in _panel_providers if (panel := provider(patient, user))]
    return sorted(panels, key=lambda panel: panel.order)
