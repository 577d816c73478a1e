"""Navigation for the base layout: only the sections the user's roles can open."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.functional import SimpleLazyObject

from medai_site.core.roles import ROLE_LABELS, Role, has_role, user_roles
from medai_site.core.two_factor import two_factor_required, two_factor_verified

# (label, url name, roles that see it). Clinical apps add their sections here.
NAVIGATION: list[tuple[str, str, tuple[Role, ...]]] = [
    ("Home", "home", ()),
    ("Patients", "patients:list", (Role.CLINICIAN,)),
    ("Worklist", "diagnosis:worklist", (Role.CLINICIAN,)),
    ("Monitoring", "remote_care:board", (Role.CLINICIAN,)),
    ("Messages", "remote_care:inbox", (Role.CLINICIAN,)),
    ("Imaging", "diagnosis:monitoring", (Role.CLINICIAN, Role.MODEL_ADMIN)),
    ("Training", "diagnosis:training", (Role.MODEL_ADMIN,)),
    ("Treatment", "treatment:training", (Role.MODEL_ADMIN,)),
    ("Risk model", "remote_care:risk_models", (Role.MODEL_ADMIN,)),
    ("Cohorts", "treatment:cohort", (Role.RESEARCHER, Role.MODEL_ADMIN)),
    ("Progression", "remote_care:progression", (Role.RESEARCHER, Role.MODEL_ADMIN)),
    (
        "Population",
        "remote_care:analytics",
        (Role.RESEARCHER, Role.MODEL_ADMIN, Role.CLINICIAN),
    ),
    ("Drug design", "drugs:home", (Role.RESEARCHER, Role.MODEL_ADMIN)),
    ("Jobs", "jobs:list", ()),
]


# Patients signed in to the portal see only the portal.
PORTAL_NAVIGATION: list[tuple[str, str, tuple[Role, ...]]] = [
    ("My health", "portal:home", ()),
    ("Messages", "portal:messages", ()),
]


def _unread_badges(user: Any, *, portal: bool) -> dict[str, int]:
    # One aggregate query per page; the badge is what makes a waiting message visible.
    from medai_site.patients.models import PortalAccount
    from remote_care.selectors import (
        portal_patient,
        unread_total_for_clinician,
        unread_total_for_patient,
    )

    if portal:
        try:
            patient = portal_patient(user=user)
        except PortalAccount.DoesNotExist:
            return {}
        return {"portal:messages": unread_total_for_patient(patient=patient, user=user)}
    if has_role(user, Role.CLINICIAN):
        return {"remote_care:inbox": unread_total_for_clinician(user=user)}
    return {}


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


def _nav_items(request: HttpRequest, user: Any) -> list[dict[str, Any]]:
    portal = has_role(user, Role.PATIENT)
    badges = _unread_badges(user, portal=portal)
    items = []
    for label, name, roles in PORTAL_NAVIGATION if portal else NAVIGATION:
        if roles and not has_role(user, *roles):
            continue
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        items.append(
            {
                "label": label,
                "url": url,
                "active": request.path == url or (url != "/" and request.path.startswith(url)),
                "badge": badges.get(name, 0),
            }
        )
    if user.is_staff:
        items.append({"label": "Admin", "url": reverse("admin:index"), "active": False})
    return items
