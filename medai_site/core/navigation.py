"""The main navigation that each app adds its sections to.

An app registers, in its AppConfig.ready(), its sections (``register_nav_item``) and a source
of the counts shown as badges on them (``register_nav_badges``); the base layout draws the
sections the user's roles can open (``medai_site.core.context_processors``). Sections are
ordered by ``order``: the platform's Home is 0, Patients 10 and Jobs 1000; the clinical apps'
sections sit between, in steps of 10.

Sections used less often name a ``group``: the sections of one group a user can open are
drawn as one disclosure menu (``<details>``, no script) where the group's first section
would be, so that no role's bar wraps at 1280 px; a group with one section the user can
open is drawn as that plain link.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from medai_site.core.roles import Role

if TYPE_CHECKING:
    from medai_site.core.roles import AnyUser

#: "main" for staff and clinicians; "portal" is all that patients signed in to the portal see.
Menu = Literal["main", "portal"]


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    roles: tuple[Role, ...] = ()  # empty: everyone who sees the menu
    order: int = 100
    menu: Menu = "main"
    # Hospital IT (active superusers) only, whatever their roles: superusers hold no role.
    hospital_it: bool = False
    # With ``roles``: shown to active superusers as well as to those roles.
    superusers_too: bool = False
    # The menu's label (e.g. "Imaging") this section is drawn under; "" for the bar itself.
    group: str = ""


class BadgeProvider(Protocol):
    def __call__(self, *, user: AnyUser, portal: bool) -> dict[str, int]: ...


_items: dict[tuple[Menu, str], NavItem] = {}
_badge_providers: list[BadgeProvider] = []


def register_nav_item(
    *,
    label: str,
    url_name: str,
    order: int,
    roles: tuple[Role, ...] = (),
    menu: Menu = "main",
    hospital_it: bool = False,
    superusers_too: bool = False,
    group: str = "",
) -> NavItem:
    """Add a section to ``menu`` (replacing one with the same URL name), shown to ``roles``
    (empty: everyone) or, with ``hospital_it``, to superusers only (with ``superusers_too``,
    to superusers as well as ``roles``), under the disclosure menu ``group`` if any;
    returns it."""
    item = NavItem(
        label=label,
        url_name=url_name,
        roles=roles,
        order=order,
        menu=menu,
        hospital_it=hospital_it,
        superusers_too=superusers_too,
        group=group,
    )
    _items[(menu, url_name)] = item
    return item


def register_nav_badges(provider: BadgeProvider) -> BadgeProvider:
    """Add a source of badge counts, keyed by URL name (usable as a decorator)."""
    if provider not in _badge_providers:
        _badge_providers.append(provider)
    return provider


def nav_items_for(*, menu: Menu) -> list[NavItem]:
    """The sections registered for ``menu``, in display order (all roles)."""
    return sorted((item for item in _items.values() if item.menu == menu), key=lambda i: i.order)


def nav_grouped(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``entries`` (dicts with "label", "url", "active", "badge" and "group", in display
    order) for the bar: a group with two or more entries becomes one entry
    {"group", "entries", "active", "badge"} where its first entry was (its badge the sum of
    theirs); the others stay as they are."""
    members: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        if entry.get("group"):
            members.setdefault(entry["group"], []).append(entry)
    bar: list[dict[str, Any]] = []
    for entry in entries:
        group = entry.get("group") or ""
        if not group or len(members[group]) == 1:
            bar.append(entry)
        elif members[group][0] is entry:
            items = members[group]
            bar.append(
                {
                    "group": group,
                    # Not "items": a template's item.items would find dict.items first.
                    "entries": items,
                    "active": any(i["active"] for i in items),
                    "badge": sum(i.get("badge", 0) for i in items),
                }
            )
    return bar


def nav_badges(*, user: AnyUser, portal: bool) -> dict[str, int]:
    """Every registered source's badge counts for ``user``, merged by URL name."""
    badges: dict[str, int] = {}
    for provider in _badge_providers:
        badges.update(provider(user=user, portal=portal))
    return badges
