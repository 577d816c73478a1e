from django.apps import AppConfig


class RemoteCareConfig(AppConfig):
    name = "remote_care"
    verbose_name = "Remote care"

    def ready(self) -> None:
        from remote_care import jobs, timeline  # noqa: F401  (job kinds, patient-page panel)
