from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "medai_site.registry"
    label = "registry"
    verbose_name = "Model registry"
