from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "medai_site.audit"
    label = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from medai_site.audit import receivers  # noqa: F401
