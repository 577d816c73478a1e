"""Register a model artifact trained elsewhere (e.g. on a GPU machine) as a model version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from medai_site.registry.services import model_version_activate, model_version_register


class Command(BaseCommand):
    help = "Import a diagnosis model artifact into the registry (optionally activating it)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("task", help="Registry task, e.g. diagnosis.pneumonia")
        parser.add_argument("artifact", type=Path)
        parser.add_argument("--user", required=True, help="Username recorded as its creator.")
        parser.add_argument("--activate", action="store_true")
        parser.add_argument("--notes", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        from diagnosis.ml.artifact import load_artifact

        path: Path = options["artifact"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        content = path.read_bytes()
        try:
            bundle = load_artifact(content)
        except (ValueError, RuntimeError) as exc:
            raise CommandError(f"{path} is not a MedAI image-model artifact: {exc}") from None
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user {options['user']!r}.")
        version = model_version_register(
            task=options["task"],
            artifact=content,
            created_by=user,
            params=dict(bundle.config),
            notes=options["notes"] or f"Imported from {path.name}.",
            training_data={"classes": list(bundle.class_names), "imported_from": path.name},
        )
        if options["activate"]:
            model_version_activate(version=version, user=user)
        self.stdout.write(f"{version.pk} {version}")
