"""Navigation for the base layout: only the sections the user's roles can open."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from medai_site.core.roles import ROLE_LABELS, Role, has_role, user_roles

# (label, url name, roles that see it). Clinical apps add their sections here.
NAVIGATION: list[tuple[str, str, tuple[Role, ...]]] = [
    ("Home", "home", ()),
    ("Patients", "patients:list", (Role.CLINICIAN,)),
    ("Worklist", "diagnosis:worklist", (Role.CLINICIAN,)),
    ("Monitoring", "remote_care:board", (Role.CLINICIAN,)),
    ("Imaging models", "diagnosis:monitoring", (Role.CLINICIAN, Role.MODEL_ADMIN)),
    ("Training", "diagnosis:training", (Role.MODEL_ADMIN,)),
    ("Treatment models", "treatment:training", (Role.MODEL_ADMIN,)),
    ("Cohorts", "treatment:cohort", (Role.RESEARCHER, Role.MODEL_ADMIN)),
    ("Drug design", "drugs:home", (Role.RESEARCHER, Role.MODEL_ADMIN)),
    ("Jobs", "jobs:list", ()),
]


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": [], "user_role_labels": []}
    items = []
    for label, name, roles in NAVIGATION:
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
            }
        )
    if user.is_staff:
        items.append({"label": "Admin", "url": reverse("admin:index"), "active": False})
    labels = [ROLE_LABELS[Role(r)] for r in sorted(user_roles(user)) if r in set(Role)]
    return {"nav_items": items, "user_role_labels": labels}
