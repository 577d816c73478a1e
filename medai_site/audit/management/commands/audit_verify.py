"""`manage.py audit_verify`: walk the audit trail's hash chain; exit 1 on the first break.

Run it periodically (cron, a systemd timer) and keep its last line, the head's sequence and
hash, somewhere the application cannot write: the next run's ``--anchor SEQUENCE:HASH`` then
also proves that nothing up to that row was rewritten, truncated or re-chained since.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from medai_site.audit import chain
from medai_site.audit.selectors import audit_chain_row, audit_chain_verify, audit_guard_missing

ANCHOR = re.compile(r"^(\d+):([0-9a-f]{64})$")


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; report OK with the count or the first break."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--anchor",
            action="append",
            default=[],
            metavar="SEQUENCE:HASH",
            help="a head printed by an earlier run (repeatable); the row must still carry it",
        )

    def handle(self, *args: Any, anchor: list[str], **options: Any) -> None:
        anchors = []
        for value in anchor:
            match = ANCHOR.match(value.strip().lower())
            if not match:
                raise CommandError(f"--anchor {value!r}: expected SEQUENCE:HASH (64 hex digits)")
            anchors.append((int(match.group(1)), match.group(2)))
        problems = []
        verdict = audit_chain_verify()
        if verdict.broken is not None:
            broken = verdict.broken
            problems.append(
                f"BROKEN at row id {broken.row_id} (sequence {broken.sequence}): "
                f"{broken.kind}. {broken.message}. Expected {broken.expected}, "
                f"stored {broken.stored}. {verdict.count} row(s) before it are intact."
            )
        for sequence, expected in anchors:
            row = audit_chain_row(sequence=sequence)
            if sequence == 0 and expected == chain.GENESIS:
                continue  # the head of an empty trail: anything since extends it
            if row is None:
                problems.append(
                    f"BROKEN anchor: sequence {sequence} no longer exists "
                    f"(deleted or truncated; the chain now ends at {verdict.head_sequence})"
                )
            elif row["row_hash"] != expected:
                problems.append(
                    f"BROKEN anchor: row id {row['id']} (sequence {sequence}) has hash "
                    f"{row['row_hash']}, the anchor recorded {expected} (re-chained)"
                )
        for name in audit_guard_missing():
            problems.append(f"GUARD MISSING: the append-only trigger {name} is absent or off")
        if problems:
            for line in problems:
                self.stderr.write(line)
            raise SystemExit(1)
        self.stdout.write(
            f"OK: {verdict.count} audit event(s), chain intact. "
            f"Head: {verdict.head_sequence}:{verdict.head_hash}"
        )
