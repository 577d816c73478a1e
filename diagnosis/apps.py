from django.apps import AppConfig


class DiagnosisConfig(AppConfig):
    name = "diagnosis"
    verbose_name = "Diagnosis (imaging)"

    def ready(self) -> None:
        from diagnosis import jobs, timeline  # noqa: F401  (job kinds, patient-page panel)
