"""Site-wide writes: role groups and their permissions, demo accounts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from medai_site.core.roles import Role

# Django-admin permissions each role's group carries (app_label.codename).
ROLE_PERMISSIONS: dict[Role, list[str]] = {
    Role.CLINICIAN: [],
    Role.RESEARCHER: [],
    Role.PATIENT: [],
    Role.MODEL_ADMIN: [
        "diagnosis.view_imagedataset",
        "diagnosis.change_imagedataset",
        "registry.view_modelversion",
        "registry.change_modelversion",
        "registry.view_modelactivation",
        "jobs.view_job",
        "jobs.change_job",
    ],
}


def roles_ensure() -> None:
    """Create the role groups and give them their permissions; idempotent."""
    for role, codes in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=str(role))
        perms = []
        for code in codes:
            app_label, codename = code.split(".")
            perm = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if perm is not None:
                perms.append(perm)
        group.permissions.add(*perms)


@dataclass
class DemoAccount:
    username: str
    password: str
    role: str
    created: bool


DEMO_USERS = [
    ("dr.adams", "Alice", "Adams", [Role.CLINICIAN], False),
    ("dr.baker", "Ben", "Baker", [Role.CLINICIAN], False),
    ("researcher", "Rosa", "Reyes", [Role.RESEARCHER], False),
    ("modeladmin", "Max", "Morgan", [Role.MODEL_ADMIN], True),
]


@transaction.atomic
def demo_accounts_ensure(*, password_file: Path) -> list[DemoAccount]:
    """Create the demo users once, with random passwords kept in ``password_file`` (mode 600);
    later runs return the same credentials. Never used by production settings."""
    roles_ensure()
    stored: dict[str, str] = {}
    if password_file.exists():
        for line in password_file.read_text().splitlines():
            if ":" in line:
                name, _, pw = line.partition(":")
                stored[name.strip()] = pw.strip()
    User = get_user_model()
    accounts = []
    for username, first, last, roles, staff in DEMO_USERS:
        user = User.objects.filter(username=username).first()
        created = user is None
        password = stored.get(username) or secrets.token_urlsafe(12)
        if created:
            user = User.objects.create_user(
                username=username,
                password=password,
                first_name=first,
                last_name=last,
                is_staff=staff,
            )
            user.groups.add(*Group.objects.filter(name__in=[str(r) for r in roles]))
        elif username not in stored:
            user.set_password(password)
            user.save(update_fields=["password"])
        stored[username] = password
        accounts.append(DemoAccount(username, password, ", ".join(r.value for r in roles), created))
    password_file.parent.mkdir(parents=True, exist_ok=True)
    password_file.write_text("".join(f"{name}: {pw}\n" for name, pw in stored.items()))
    password_file.chmod(0o600)
    return accounts


def demo_portal_ensure(*, password_file: Path, clinician_username: str) -> DemoAccount | None:
    """A portal account ("patient") for one of the clinician's demo patients, its password
    kept with the other demo accounts; idempotent. Never used by production settings."""
    from medai_site.patients.models import PortalAccount
    from medai_site.patients.selectors import patient_list
    from medai_site.patients.services import portal_account_create

    User = get_user_model()
    username = "patient"
    existing = PortalAccount.objects.filter(user__username=username).first()
    stored: dict[str, str] = {}
    if password_file.exists():
        for line in password_file.read_text().splitlines():
            name, _, pw = line.partition(":")
            stored[name.strip()] = pw.strip()
    if existing is None:
        clinician = User.objects.get(username=clinician_username)
        # The clinician's last patient by MRN: a fixed, recognisable demo record.
        patient = patient_list(user=clinician).order_by("-mrn").first()
        if patient is None:
            return None
        user = portal_account_create(
            patient=patient, username=username, email="", created_by=clinician
        ).account.user
    else:
        user = existing.user
    password = stored.get(username) or secrets.token_urlsafe(12)
    if existing is None or username not in stored:
        user.set_password(password)
        user.save(update_fields=["password"])
    stored[username] = password
    password_file.write_text("".join(f"{name}: {pw}\n" for name, pw in stored.items()))
    password_file.chmod(0o600)
    return DemoAccount(username, password, "patient", existing is None)
