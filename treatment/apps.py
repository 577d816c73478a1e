from django.apps import AppConfig


class TreatmentConfig(AppConfig):
    name = "treatment"
    verbose_name = "Treatment options"

    def ready(self) -> None:
        from treatment import jobs, timeline  # noqa: F401  (job kinds, patient-page panel)
