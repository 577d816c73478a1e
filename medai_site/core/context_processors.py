"""Navigation for the base layout: only the registered sections the user's roles can open."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.functional import SimpleLazyObject

from medai_site.core.navigation import nav_badges, nav_grouped, nav_items_for
from medai_site.core.roles import ROLE_LABELS, Role, has_role, user_roles
from medai_site.core.two_factor import two_factor_required, two_factor_verified

if TYPE_CHECKING:
    from medai_site.core.roles import AnyUser


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": [], "user_role_labels": []}
    labels = [ROLE_LABELS[Role(r)] for r in sorted(user_roles(user)) if r in set(Role)]
    # Before the second factor is passed, every page but the sign-in steps redirects there, so
    # links to them would only mislead (and the badges would count patient messages).
    if two_factor_required(user=user) and not two_factor_verified(request=request):
        return {"nav_items": [], "user_role_labels": labels}
    # Lazy: partials polled every few seconds (board rows, job status) never draw the
    # navigation, so they must not pay for its unread-message counts.
    return {
        "nav_items": SimpleLazyObject(lambda: _nav_items(request, user)),
        "user_role_labels": labels,
    }


def _nav_items(request: HttpRequest, user: AnyUser) -> list[dict[str, Any]]:
    # Patients signed in to the portal see only the portal.
    portal = has_role(user, Role.PATIENT)
    # One aggregate query per source and page; a badge is what makes a waiting message visible.
    badges = nav_badges(user=user, portal=portal)
    items = []
    for nav in nav_items_for(menu="portal" if portal else "main"):
        superuser = user.is_active and user.is_superuser
        if nav.roles and not has_role(user, *nav.roles) and not (nav.superusers_too and superuser):
            continue
        if nav.hospital_it and not (user.is_active and user.is_superuser):
            continue
        try:
            url = reverse(nav.url_name)
        except NoReverseMatch:
            continue
        items.append(
            {
                "label": nav.label,
                "url": url,
                "active": request.path == url or (url != "/" and request.path.startswith(url)),
                "badge": badges.get(nav.url_name, 0),
                "group": nav.group,
            }
        )
    # One current section: the deepest one the path is under (the fleet's /jobs/fleet/ is
    # under Jobs' /jobs/ too).
    current = [item for item in items if item["active"]]
    if len(current) > 1:
        deepest = max(current, key=lambda item: len(str(item["url"])))
        for item in current:
            item["active"] = item is deepest
    if user.is_staff:
        items.append(
            {"label": "Admin", "url": reverse("admin:index"), "active": False, "group": ""}
        )
    return nav_grouped(items)
