from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "medai_site.registry"
    label = "registry"
    verbose_name = "Model registry"

    def ready(self) -> None:
        from medai_site.registry import tasks  # noqa: F401  (the registry.validate job kind)
