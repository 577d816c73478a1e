"""Register a model artifact trained elsewhere (e.g. on a GPU machine) as a model version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from medai_site.registry.services import model_version_import


class Command(BaseCommand):
    help = (
        "Import a model artifact into the registry as a new version of TASK; it is validated "
        "on the task's held-out set and awaits a second model admin's approval. TASK must be "
        "one an app declares; the artifact must load as its model."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("task", help="Registry task, e.g. diagnosis.pneumonia")
        parser.add_argument("artifact", type=Path)
        parser.add_argument("--user", required=True, help="Username recorded as its creator.")
        parser.add_argument(
            "--activate",
            action="store_true",
            help="Put it into service at once when TASK has never had a version in service "
            "(bootstrap); otherwise it waits for approval.",
        )
        parser.add_argument("--notes", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["artifact"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user {options['user']!r}.")
        try:
            version = model_version_import(
                task=options["task"],
                artifact=path.read_bytes(),
                created_by=user,
                activate=options["activate"],
                notes=options["notes"] or f"Imported from {path.name}.",
                source_name=path.name,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(f"{version.pk} {version}")
        if options["activate"] and version.status != version.Status.ACTIVE:
            # Only the first version of a task that never had one in service skips approval.
            self.stdout.write(
                f"Not put into service: {version.task} has had a version in service, so "
                f"{version} awaits a second model admin's approval (its validation is queued)."
            )
