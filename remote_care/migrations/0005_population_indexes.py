"""Indexes for the population dashboard (remote_care/analytics.py).

Its queries select every patient's observations in a time range, then group them; the
(patient, taken_at) index cannot serve a range on taken_at alone. On PostgreSQL a B-tree on
taken_at that INCLUDEs the columns the aggregates read (patient, NEWS2 total, partial flag)
lets most dashboard queries run as index-only scans, never reading the wide heap rows (about
1.4 kB each with the NEWS2 JSON); SQLite gets the same columns as index keys, which it uses as
a covering index. On PostgreSQL a small partial index holds the low-medium NEWS2 sets, the
one clinical-risk band decided from the JSON. Alerts get an index on raised_at.

The indexes are raw SQL outside Django's model state (so no model change is needed, and
makemigrations stays clean); their names are fixed so they can be dropped by name.
"""

from django.db import migrations

OBSERVATION_INDEX = "remote_care_obs_taken_cover"
RED_SCORE_INDEX = "remote_care_obs_red_score"
ALERT_INDEX = "remote_care_alert_raised_at"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {OBSERVATION_INDEX} ON remote_care_observation "
            "(taken_at) INCLUDE (patient_id, news2_total, news2_partial)"
        )
        # Low-medium NEWS2 sets (total 3-4 with a single 3, analytics.RED_SCORE_BELOW_FIVE,
        # predicate written as Django writes that filter): the one band whose test is in the
        # JSON. A small partial index keeps the band query off the wide heap rows.
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {RED_SCORE_INDEX} ON remote_care_observation "
            "(taken_at) INCLUDE (patient_id, news2_partial) WHERE news2_total >= 3 "
            "AND news2_total < 5 AND (news2 -> 'any_single_three') = 'true'::jsonb"
        )
    else:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {OBSERVATION_INDEX} ON remote_care_observation "
            "(taken_at, patient_id, news2_total, news2_partial)"
        )
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {ALERT_INDEX} ON remote_care_alert (raised_at)"
    )


def drop(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {OBSERVATION_INDEX}")
    schema_editor.execute(f"DROP INDEX IF EXISTS {RED_SCORE_INDEX}")
    schema_editor.execute(f"DROP INDEX IF EXISTS {ALERT_INDEX}")


class Migration(migrations.Migration):
    dependencies = [("remote_care", "0004_risk_and_progression")]

    operations = [migrations.RunPython(create, drop)]
