"""Delete media files that no row references (left by killed requests or jobs)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from medai_site.core.media import media_folders, media_orphans_sweep


class Command(BaseCommand):
    help = (
        "Delete files under the apps' media folders that no database row references and "
        "that are older than the grace period (default MEDAI_ORPHAN_MEDIA_GRACE_HOURS)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--grace-hours",
            type=float,
            default=settings.MEDAI_ORPHAN_MEDIA_GRACE.total_seconds() / 3600,
            help="Only files older than this many hours are deleted.",
        )
        parser.add_argument("--dry-run", action="store_true", help="List, delete nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        report = media_orphans_sweep(
            older_than=timedelta(hours=options["grace_hours"]), dry_run=options["dry_run"]
        )
        for name in report.deleted:
            self.stdout.write(name)
        verb = "would delete" if options["dry_run"] else "deleted"
        self.stdout.write(
            f"{verb} {len(report.deleted)} orphan file(s) under {', '.join(media_folders())}; "
            f"{report.referenced} in use, {report.kept_recent} too recent to judge."
        )
