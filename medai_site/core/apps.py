from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "medai_site.core"
    label = "core"
    verbose_name = "MedAI core"

    def ready(self) -> None:
        from medai_site.core.navigation import register_nav_item
        from medai_site.core.services import roles_ensure

        register_nav_item(label="Home", url_name="home", order=0)

        # Groups need the permissions that post_migrate creates, so they are made after it.
        post_migrate.connect(
            lambda **kwargs: roles_ensure(), dispatch_uid="medai_roles", weak=False
        )
