from django.db import migrations, models


def acknowledgements_into_rollups(apps, schema_editor):
    """Roll-ups built before this migration have no acknowledged-alert cells, delays or
    hist["k"], and the page now reads time to acknowledge from them: rebuild them
    (set-based on PostgreSQL). Nothing to do where none were built.

    The service, not historical models, as in 0014: the rebuild is what the page's figures
    are defined by, and it writes these tables only."""
    day_model = apps.get_model("remote_care", "PopulationPatientDay")
    if not day_model.objects.using(schema_editor.connection.alias).exists():
        return
    from remote_care.analytics.services import analytics_rollup_rebuild

    analytics_rollup_rebuild()


class Migration(migrations.Migration):
    dependencies = [
        ("remote_care", "0014_population_alert_cells"),
    ]

    operations = [
        migrations.AlterField(
            model_name="populationdaycell",
            name="kind",
            field=models.CharField(
                choices=[
                    ("all", "All"),
                    ("total", "Total"),
                    ("band", "Band"),
                    ("high", "High"),
                    ("rest", "Rest"),
                    ("alert", "Alert"),
                    ("alerted", "Alerted"),
                    ("acked", "Acked"),
                    ("unacked", "Unacked"),
                ],
                max_length=8,
            ),
        ),
        migrations.CreateModel(
            name="PopulationAckDelay",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("day", models.DateField()),
                ("sex", models.CharField(blank=True, max_length=10)),
                ("age_band", models.CharField(max_length=10)),
                ("spo2_scale", models.PositiveSmallIntegerField(blank=True, null=True)),
                ("team_set", models.CharField(blank=True, max_length=255)),
                ("level", models.SmallIntegerField()),
                ("delay_us", models.BigIntegerField()),
                ("alerts", models.PositiveIntegerField(default=0)),
            ],
            options={
                "indexes": [models.Index(fields=["day"], name="rc_popackdelay_day")],
            },
        ),
        migrations.RunPython(
            acknowledgements_into_rollups, migrations.RunPython.noop, atomic=False
        ),
    ]
