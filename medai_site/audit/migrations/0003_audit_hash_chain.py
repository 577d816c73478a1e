"""Hash chain over the audit trail: sequence, previous hash and own hash on every row.

Existing rows are chained in the order they were written (created_at, id). On PostgreSQL the
append-only trigger is switched off for the back-fill only, inside this migration's
transaction, so no other writer can slip an UPDATE through meanwhile."""

from django.db import migrations, models

from medai_site.audit import chain


def backfill(apps, schema_editor):
    AuditEvent = apps.get_model("audit", "AuditEvent")
    postgres = schema_editor.connection.vendor == "postgresql"
    if postgres:
        schema_editor.execute(
            "LOCK TABLE audit_auditevent IN EXCLUSIVE MODE;"
            "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only",
            params=None,
        )
    prev_hash = chain.GENESIS
    fields = [name for name in chain.HASHED_FIELDS if name not in ("sequence", "prev_hash")]
    rows = AuditEvent.objects.order_by("created_at", "id").values("id", *fields)
    for sequence, row in enumerate(rows.iterator(chunk_size=2000), start=1):
        row.update(sequence=sequence, prev_hash=prev_hash)
        own = chain.row_hash(row)
        AuditEvent.objects.filter(pk=row["id"]).update(
            sequence=sequence, prev_hash=prev_hash, row_hash=own
        )
        prev_hash = own
    if postgres:
        schema_editor.execute(
            "ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only", params=None
        )


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_trigger")]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="sequence",
            field=models.BigIntegerField(null=True),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(default="", max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditevent",
            name="row_hash",
            field=models.CharField(default="", max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="auditevent",
            name="sequence",
            field=models.BigIntegerField(unique=True),
        ),
    ]
