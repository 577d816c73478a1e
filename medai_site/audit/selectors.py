"""Reads of the audit trail: verifying its hash chain and its append-only guard."""

from __future__ import annotations

from django.db import connection

from medai_site.audit import chain
from medai_site.audit.models import AuditEvent


def audit_chain_verify(*, chunk_size: int = 5000) -> chain.Verdict:
    """Walk the whole trail in sequence order; the verdict names the first broken link."""
    rows = AuditEvent.objects.order_by("sequence", "id").values(*chain.CHAIN_FIELDS)
    return chain.chain_verify(rows.iterator(chunk_size=chunk_size))


def audit_chain_row(*, sequence: int) -> dict | None:
    """The chain fields of the row at ``sequence``, or None when there is none."""
    return AuditEvent.objects.filter(sequence=sequence).values(*chain.CHAIN_FIELDS).first()


def audit_guard_missing() -> list[str]:
    """Names of the database-side append-only guards that should exist but do not."""
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            expected = ["audit_event_append_only"]
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass "
                "AND tgenabled <> 'D' AND NOT tgisinternal",
                [table],
            )
        elif connection.vendor == "sqlite":
            expected = ["audit_event_no_update", "audit_event_no_delete"]
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [table],
            )
        else:
            return []
        present = {name for (name,) in cursor.fetchall()}
    return [name for name in expected if name not in present]
