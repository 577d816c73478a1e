from django.apps import AppConfig


class TreatmentConfig(AppConfig):
    name = "treatment"
    verbose_name = "Treatment options"

    def ready(self) -> None:
        from medai_site.core.demo import register_demo_seeder
        from medai_site.core.navigation import register_nav_item
        from medai_site.core.roles import Role
        from medai_site.registry.catalogue import model_kind_register
        from medai_site.registry.shadow import shadow_family_register
        from medai_site.registry.shipped import shipped_model_register
        from treatment import shadow, tasks, timeline, training  # noqa: F401  (job kinds, patient-page panel)
        from treatment.demo import demo_treatment_seed
        from treatment.heldout import treatment_validate
        from treatment.ml.trials import TRIALS
        from treatment.services import task_name

        model_kind_register(
            label="treatment model",
            tasks=lambda: [task_name(trial) for trial in TRIALS],
            load=tasks.TreatmentModel.from_bytes,
            validate=treatment_validate,
        )

        shadow_family_register(
            label="treatment",
            tasks=lambda: [task_name(trial) for trial in TRIALS],
            note=shadow.NOTE,
        )

        register_nav_item(
            label="Treatment models",
            url_name="treatment:training",
            roles=(Role.MODEL_ADMIN,),
            order=70,
            group="Treatment",
        )
        register_nav_item(
            label="Cohorts",
            url_name="treatment:cohort",
            roles=(Role.RESEARCHER, Role.MODEL_ADMIN),
            order=90,
            group="Treatment",
        )

        register_demo_seeder(demo_treatment_seed, order=20)
        shipped_model_register(
            slug=training.SHIPPED_SLUG,
            task=task_name(training.SHIPPED_TRIAL),
            label="GBSG2 treatment model (Cox)",
            build=training.gbsg2_build,
            minutes=0.5,
        )
