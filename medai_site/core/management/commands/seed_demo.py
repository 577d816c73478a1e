"""Create demo accounts (passwords printed) and demo patients from the GBSG2 trial."""

from __future__ import annotations

from itertools import islice
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from medai_site.core.demo import DemoRun, demo_accounts_ensure, demo_portal_ensure, demo_seeders
from medai_site.core.two_factor import demo_two_factor_ensure
from medai_site.patients.models import PatientImport
from medai_site.patients.services import patient_import_finish
from medai_site.patients.sources import BUILTIN_SOURCES, PatientRow, builtin_rows

# Each demo clinician gets their own slice of the trial, so the two never share a patient.
DEMO_PATIENTS = {"dr.adams": (0, 20), "dr.baker": (20, 40)}


class Command(BaseCommand):
    help = "Create demo accounts and demo patients (never in production)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--no-train",
            action="store_true",
            help="Queue no training run. The pre-trained demo models shipped in data/models/ "
            "are put into service either way; without this flag a first training run is "
            "queued for any of them that is missing or refused.",
        )
        parser.add_argument(
            "--no-monitoring",
            action="store_true",
            help="Do not put demo patients under remote monitoring (replayed PhysioNet vitals).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.SETTINGS_MODULE.endswith(".production"):
            raise CommandError("Refusing to create demo accounts under production settings.")
        accounts = demo_accounts_ensure(password_file=settings.VAR_DIR / "demo-accounts.txt")
        User = get_user_model()
        # The demo model admin signs in with a second factor like any staff account; its
        # authenticator is enrolled here so the key can be printed beside the password.
        totp_key = demo_two_factor_ensure(
            user=User.objects.get(username="modeladmin"),
            password_file=settings.VAR_DIR / "demo-accounts.txt",
        )
        source = BUILTIN_SOURCES["gbsg2"]
        for username, (start, stop) in DEMO_PATIENTS.items():
            user = User.objects.get(username=username)
            rows = [
                r for r in islice(builtin_rows(source), start, stop) if isinstance(r, PatientRow)
            ]
            with transaction.atomic():
                record = PatientImport.objects.create(source="gbsg2", created_by=user)
                imported, _ = patient_import_finish(
                    record=record, rows=rows, user=user, source_label="GBSG2 trial demo"
                )
            if imported:
                self.stdout.write(f"  {imported} demo patients for {username}")
        portal = demo_portal_ensure(
            password_file=settings.VAR_DIR / "demo-accounts.txt", clinician_username="dr.adams"
        )
        if portal is not None:
            accounts.append(portal)
        # Each clinical app's demo data, in its registered order (medai_site.core.demo).
        run = DemoRun(
            model_admin=User.objects.get(username="modeladmin"),
            clinicians=[User.objects.get(username=name) for name in DEMO_PATIENTS],
            train=not options["no_train"],
            monitoring=not options["no_monitoring"],
        )
        for seeder in demo_seeders():
            note = seeder(run)
            if note:
                self.stdout.write(f"  {note}")
        self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS(
                f"MedAI demo accounts (also in {settings.VAR_DIR / 'demo-accounts.txt'}):"
            )
        )
        for account in accounts:
            self.stdout.write(f"  {account.username:<12} {account.password:<20} {account.role}")
        self.stdout.write(
            f"  modeladmin's second factor: add the key {totp_key} to an authenticator app "
            "(time-based, 6 digits, 30 s), or run: oathtool --totp -b " + totp_key
        )
        self.stdout.write("")
