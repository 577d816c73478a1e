from django.apps import AppConfig


class RemoteCareConfig(AppConfig):
    name = "remote_care"
    verbose_name = "Remote care"

    def ready(self) -> None:
        from remote_care import timeline  # noqa: F401  (patient-page panel)
