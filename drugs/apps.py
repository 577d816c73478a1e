from django.apps import AppConfig


class DrugsConfig(AppConfig):
    name = "drugs"
    verbose_name = "Drug design"

    def ready(self) -> None:
        from drugs import jobs  # noqa: F401  (job kinds)
        from medai_site.core.media import media_folder_register

        media_folder_register("drugs/uploads")
        media_folder_register("drugs/datasets")
