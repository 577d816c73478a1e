from django.apps import AppConfig


class DrugsConfig(AppConfig):
    name = "drugs"
    verbose_name = "Drug design"

    def ready(self) -> None:
        from drugs import jobs  # noqa: F401  (job kinds)
