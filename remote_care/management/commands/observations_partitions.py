"""List, create ahead or detach the observation table's monthly partitions (PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from remote_care.devices.partitions import (
    PartitioningUnavailable,
    PartitionInUse,
    observation_partitions_detach,
    observation_partitions_ensure,
    observation_partitions_list,
)


def _month(value: str) -> dt.date:
    try:
        if not re.fullmatch(r"\d{4}-\d{2}", value):
            raise ValueError(value)
        return dt.date(int(value[:4]), int(value[5:]), 1)
    except ValueError as error:
        raise CommandError(f"--before takes a month as YYYY-MM, not {value!r}.") from error


class Command(BaseCommand):
    help = (
        "The observation table's monthly partitions on PostgreSQL. 'list' shows them; "
        "'create --months-ahead N' creates this month's and the next N (idempotent; the beat "
        "does it daily); 'detach --before YYYY-MM' detaches every month before that one, "
        "leaving plain tables to archive with pg_dump (README: 'Archiving old observations'), "
        "or drops them with --drop."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help="List the monthly tables, attached or detached.")
        create = actions.add_parser("create", help="Create the coming months' partitions.")
        create.add_argument("--months-ahead", type=int, default=3)
        detach = actions.add_parser("detach", help="Detach the months before a month.")
        detach.add_argument("--before", required=True, help="YYYY-MM; that month stays.")
        detach.add_argument(
            "--drop", action="store_true", help="Drop the detached tables (after archiving)."
        )
        detach.add_argument(
            "--force",
            action="store_true",
            help="Detach even while alerts, risk scores or waveforms point into the months.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "list":
            partitions = observation_partitions_list()
            if not partitions:
                self.stdout.write("The observation table is not partitioned on this database.")
            for partition in partitions:
                self.stdout.write(
                    f"{partition.name}\t{'attached' if partition.attached else 'DETACHED'}\t"
                    f"~{partition.rows} rows\t{partition.bytes // 1024} KiB"
                )
        elif action == "create":
            if options["months_ahead"] < 0:
                raise CommandError("--months-ahead must be 0 or more.")
            created = observation_partitions_ensure(months_ahead=options["months_ahead"])
            self.stdout.write(
                "Created " + (", ".join(created) if created else "nothing (all present).")
            )
        else:
            try:
                names = observation_partitions_detach(
                    before=_month(options["before"]),
                    drop=options["drop"],
                    force=options["force"],
                )
            except (PartitioningUnavailable, PartitionInUse, ValueError) as error:
                raise CommandError(str(error)) from error
            verb = "Dropped" if options["drop"] else "Detached"
            self.stdout.write(f"{verb} " + (", ".join(names) if names else "nothing."))
