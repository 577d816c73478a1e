"""Roles are Django groups; views ask for a role, selectors decide which rows a user sees."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeAlias

from django.core.exceptions import PermissionDenied

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User
    from django.http import HttpRequest

    # What request.user is: the user that services and selectors act for or show rows to.
    AnyUser: TypeAlias = User | AnonymousUser

    class AuthenticatedHttpRequest(HttpRequest):
        """A request that only a signed-in user reaches: every view but those marked
        login_not_required (LoginRequiredMiddleware), and the admin."""

        user: User


class Role(StrEnum):
    CLINICIAN = "clinician"
    RESEARCHER = "researcher"
    MODEL_ADMIN = "model_admin"
    # A patient signed in to the portal: sees only their own record and messages, and
    # never holds another role (medai_site.core.middleware.PortalBoundaryMiddleware).
    PATIENT = "patient"


ROLE_LABELS = {
    Role.CLINICIAN: "Clinician",
    Role.RESEARCHER: "Researcher",
    Role.MODEL_ADMIN: "Model admin",
    Role.PATIENT: "Patient",
}


def user_roles(user: AnyUser) -> frozenset[str]:
    """The user's role names, cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, "_medai_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        if not user.is_staff:
            # The model-admin role works through the Django admin, which needs staff status.
            cached = cached - {Role.MODEL_ADMIN}
        user._medai_roles = cached  # type: ignore[attr-defined]  # a per-request cache on the user
    return cached


def has_role(user: AnyUser, *roles: Role) -> bool:
    """True when the user holds any of ``roles``."""
    return bool(user_roles(user) & {str(role) for role in roles})


def role_required(*roles: Role) -> Callable:
    """View decorator: 403 unless the signed-in user holds one of ``roles``."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: Any, *args: Any, **kwargs: Any) -> Any:
            if not has_role(request.user, *roles):
                labels = " or ".join(ROLE_LABELS[role].lower() for role in roles)
                raise PermissionDenied(f"This page is for users with the {labels} role.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def is_model_admin_or_it(user: AnyUser) -> bool:
    """True for an active model admin or an active superuser (hospital IT)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return bool(user.is_superuser) or has_role(user, Role.MODEL_ADMIN)


def model_admin_or_it_required(view: Callable) -> Callable:
    """View decorator: 403 unless :func:`is_model_admin_or_it` (model pages, the fleet)."""

    @wraps(view)
    def wrapped(request: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_model_admin_or_it(request.user):
            raise PermissionDenied("This page is for model admins.")
        return view(request, *args, **kwargs)

    return wrapped
