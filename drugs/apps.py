from django.apps import AppConfig


class DrugsConfig(AppConfig):
    name = "drugs"
    verbose_name = "Drug design"

    def ready(self) -> None:
        from drugs import tasks  # noqa: F401  (job kinds)
        from drugs.artifacts import generator_from_bytes, load_predictor_bytes
        from drugs.demo import demo_drugs_seed
        from drugs.heldout import generator_validate, predictor_validate
        from drugs.ml.predictors import ENDPOINTS
        from drugs.models import GENERATOR_TASK, predictor_task
        from medai_site.core.demo import register_demo_seeder
        from medai_site.core.media import media_folder_register
        from medai_site.core.navigation import register_nav_item
        from medai_site.core.roles import Role
        from medai_site.registry.catalogue import model_kind_register

        media_folder_register("drugs/uploads")
        media_folder_register("drugs/datasets")

        model_kind_register(
            label="molecule generator",
            tasks=lambda: [GENERATOR_TASK],
            load=generator_from_bytes,
            validate=generator_validate,
        )
        model_kind_register(
            label="property predictor",
            tasks=lambda: [predictor_task(endpoint) for endpoint in ENDPOINTS],
            load=load_predictor_bytes,
            validate=predictor_validate,
        )

        register_nav_item(
            label="Drug design",
            url_name="drugs:home",
            roles=(Role.RESEARCHER, Role.MODEL_ADMIN),
            order=120,
        )

        register_demo_seeder(demo_drugs_seed, order=50)
