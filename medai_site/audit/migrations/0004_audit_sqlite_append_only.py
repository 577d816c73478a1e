"""On SQLite (the embedded default) the database refuses UPDATE and DELETE on the audit trail
too, as the PostgreSQL trigger of 0002 does there. Created after the chain's back-fill (0003),
which has to update every existing row once.

A later migration that makes SQLite rebuild this table (Django copies it into a new one) drops
these triggers with the old table: re-create them there; `manage.py audit_verify` reports a
missing guard."""

from django.db import migrations

GUARDS = {
    "audit_event_no_update": "UPDATE",
    "audit_event_no_delete": "DELETE",
}


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for name, operation in GUARDS.items():
        schema_editor.execute(
            f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {operation} ON audit_auditevent "
            f"BEGIN SELECT RAISE(ABORT, 'audit_auditevent is append-only "
            f"({operation} refused)'); END",
            params=None,
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for name in GUARDS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_audit_hash_chain")]
    operations = [migrations.RunPython(forwards, backwards)]
