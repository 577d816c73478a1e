"""The main navigation that each app adds its sections to.

An app registers, in its AppConfig.ready(), its sections (``register_nav_item``) and a source
of the counts shown as badges on them (``register_nav_badges``); the base layout draws the
sections the user's roles can open (``medai_site.core.context_processors``). Sections are
ordered by ``order``: the platform's Home is 0, Patients 10 and Jobs 1000; the clinical apps'
sections sit between, in steps of 10.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

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
) -> NavItem:
    """Add a section to ``menu`` (replacing one with the same URL name), shown to ``roles``
    (empty: everyone) or, with ``hospital_it``, to superusers only (with ``superusers_too``,
    to superusers as well as ``roles``); returns it."""
    item = NavItem(
        label=label,
        url_name=url_name,
        roles=roles,
        order=order,
        menu=menu,
        hospital_it=hospital_it,
        superusers_too=superusers_too,
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


def nav_badges(*, user: AnyUser, portal: bool) -> dict[str, int]:
    """Every registered source's badge counts for ``user``, merged by URL name."""
    badges: dict[str, int] = {}
    for provider in _badge_providers:
        badges.update(provider(user=user, portal=portal))
    return badges
