from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "medai_site.registry"
    label = "registry"
    verbose_name = "Model registry"

    def ready(self) -> None:
        from medai_site.core.navigation import register_nav_item
        from medai_site.core.roles import Role

        register_nav_item(
            label="Shadow mode",
            url_name="registry:shadow_list",
            roles=(Role.MODEL_ADMIN,),
            order=85,
        )
