"""Every read of patients. Scoping lives here: a user sees only patients whose care team
they belong to, whatever template or API asks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet

from medai_site.patients.models import CareTeamMembership, Patient, PortalAccount

if TYPE_CHECKING:
    from medai_site.core.roles import AnyUser


def patient_list(*, user: AnyUser, query: str = "") -> QuerySet[Patient]:
    """The user's own patients, optionally filtered by MRN or name fragments."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Patient.objects.none()
    patients = Patient.objects.filter(memberships__user=user)
    for term in query.split()[:5]:
        patients = patients.filter(
            Q(mrn__icontains=term) | Q(given_name__icontains=term) | Q(family_name__icontains=term)
        )
    return patients.distinct()


def patient_get(*, user: AnyUser, pk: int) -> Patient:
    """One of the user's patients; Patient.DoesNotExist for anyone else's (no existence leak)."""
    return patient_list(user=user).get(pk=pk)


def patient_recent(*, user: AnyUser, limit: int = 8) -> list[Patient]:
    """The user's most recently registered patients."""
    return list(patient_list(user=user).order_by("-created_at")[:limit])


def patient_care_team(*, patient: Patient) -> QuerySet[CareTeamMembership]:
    """The patient's care team, responsible clinicians first."""
    return patient.memberships.select_related("user").order_by("role", "user__last_name")


def portal_account_for_activation(*, user: AnyUser) -> PortalAccount | None:
    """The user's open portal account when they may set a password through a portal link
    (an active user holding only the patient role, neither staff nor superuser); else None."""
    from medai_site.core.roles import Role

    if user is None or not user.is_active or user.is_staff or user.is_superuser:
        return None
    if set(user.groups.values_list("name", flat=True)) != {str(Role.PATIENT)}:
        return None
    return (
        PortalAccount.objects.filter(user=user, revoked_at__isnull=True)
        .select_related("patient")
        .first()
    )
