from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "medai_site.core"
    label = "core"
    verbose_name = "MedAI core"

    def ready(self) -> None:
        from medai_site.core.services import roles_ensure

        # Groups need the permissions that post_migrate creates, so they are made after it.
        post_migrate.connect(
            lambda **kwargs: roles_ensure(), dispatch_uid="medai_roles", weak=False
        )
