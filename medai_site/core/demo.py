"""Demo data for ``seed_demo`` (never used by production settings): the platform's demo
accounts, and the registry of the clinical apps' demo seeders.

An app registers, in its AppConfig.ready(), a seeder (``register_demo_seeder``) that adds its
demo data for a :class:`DemoRun` and returns a line for the console ("" when it did nothing).
``seed_demo`` runs them by ``order`` after the demo accounts, patients and portal account
exist; each must be idempotent, since the command may be run again.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from medai_site.core.roles import Role
from medai_site.core.services import roles_ensure


@dataclass(frozen=True)
class DemoRun:
    model_admin: Any  # who registers the demo data sets and models (and queues any training)
    clinicians: list[Any]  # the demo clinicians, each with their own demo patients
    train: bool  # False with --no-train: queue no training run (shipped models still go in)
    monitoring: bool  # False with --no-monitoring: put no patient under remote monitoring


DemoSeeder = Callable[[DemoRun], str]

_seeders: list[tuple[int, DemoSeeder]] = []


def register_demo_seeder(seeder: DemoSeeder, *, order: int) -> DemoSeeder:
    """Add an app's demo seeder, run in ``order`` (lower first); returns it."""
    if all(seeder is not known for _, known in _seeders):
        _seeders.append((order, seeder))
    return seeder


def demo_seeders() -> list[DemoSeeder]:
    """The registered demo seeders, in the order seed_demo runs them."""
    return [seeder for _, seeder in sorted(_seeders, key=lambda entry: entry[0])]


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
        if user is None:
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
