from django.apps import AppConfig


class DrugsConfig(AppConfig):
    name = "drugs"
    verbose_name = "Drug design"

    def ready(self) -> None:
        from drugs import tasks  # noqa: F401  (job kinds)
        from drugs.demo import demo_drugs_seed
        from medai_site.core.demo import register_demo_seeder
        from medai_site.core.media import media_folder_register
        from medai_site.core.navigation import register_nav_item
        from medai_site.core.roles import Role

        media_folder_register("drugs/uploads")
        media_folder_register("drugs/datasets")

        register_nav_item(
            label="Drug design",
            url_name="drugs:home",
            roles=(Role.RESEARCHER, Role.MODEL_ADMIN),
            order=120,
        )

        register_demo_seeder(demo_drugs_seed, order=50)
