"""List, verify and (re)build the pre-trained models shipped under data/models/."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from medai_site.registry.shipped import (
    ShippedArtifactError,
    shipped_artifact,
    shipped_build,
    shipped_model,
    shipped_models,
    shipped_problems,
)


class Command(BaseCommand):
    help = (
        "The pre-trained models shipped in data/models/<slug>/: 'list' them with their state, "
        "'verify' their sha256 (exit 1 on any problem), or 'build' them from their apps' "
        "training code (seeded, one thread): the slugs given, every one, or with --missing "
        "only those that are missing or do not verify (bin/run does that before serving)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("action", choices=["list", "verify", "build"])
        parser.add_argument("slugs", nargs="*", help="Shipped models to build (default: all).")
        parser.add_argument(
            "--missing",
            action="store_true",
            help="build: only those missing or not matching their SHA256SUMS.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "list":
            for item in shipped_models():
                try:
                    found = shipped_artifact(slug=item.slug)
                    state = f"ok, {len(found.content):,} bytes, sha256 {found.sha256[:16]}"
                except ShippedArtifactError as exc:
                    state = f"PROBLEM: {exc}"
                self.stdout.write(f"{item.slug:<28} {item.task:<32} {state}")
            return
        if action == "verify":
            problems = shipped_problems()
            for slug, problem in problems.items():
                self.stderr.write(f"{slug}: {problem}")
            if problems:
                raise CommandError(f"{len(problems)} shipped model(s) do not verify.")
            self.stdout.write(f"{len(shipped_models())} shipped models verify.")
            return
        try:
            wanted = [shipped_model(slug) for slug in options["slugs"]] or shipped_models()
        except ShippedArtifactError as exc:
            raise CommandError(str(exc)) from None
        if options["missing"]:
            problems = shipped_problems()
            wanted = [item for item in wanted if item.slug in problems]
        for item in wanted:
            if item.build is None:
                self.stderr.write(f"{item.slug}: not built here; build it with: {item.command}")
                continue
            self.stdout.write(f"==> building {item.slug} (about {item.minutes:g} min on one CPU)")
            started = time.monotonic()
            try:
                found = shipped_build(slug=item.slug, echo=self.stdout.write)
            except ShippedArtifactError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(
                self.style.SUCCESS(
                    f"==> {item.slug}: {len(found.content):,} bytes, sha256 {found.sha256} "
                    f"({time.monotonic() - started:.0f} s)"
                )
            )
