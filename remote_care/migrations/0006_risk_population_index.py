"""Index for the population dashboard's model-risk measure (analytics.population_risk_scores).

Its queries select one model version's scores in a time range and aggregate their risk per
day or week; the (patient, -taken_at) index cannot serve that. On PostgreSQL a B-tree on
(model_version, taken_at) that INCLUDEs patient and risk answers them as index-only scans;
SQLite gets the same columns as keys. Raw SQL with a fixed name, as in 0005.
"""

from django.db import migrations

RISK_INDEX = "remote_care_risk_version_taken"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {RISK_INDEX} ON remote_care_riskscore "
            "(model_version_id, taken_at) INCLUDE (patient_id, risk)"
        )
    else:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {RISK_INDEX} ON remote_care_riskscore "
            "(model_version_id, taken_at, patient_id, risk)"
        )


def drop(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {RISK_INDEX}")


class Migration(migrations.Migration):
    dependencies = [("remote_care", "0005_population_indexes")]

    operations = [migrations.RunPython(create, drop)]
