from django.apps import AppConfig


class RemoteCareConfig(AppConfig):
    name = "remote_care"
    verbose_name = "Remote care"

    def ready(self) -> None:
        from medai_site.core.media import media_folder_register
        from remote_care import jobs, timeline  # noqa: F401  (job kinds, patient-page panel)

        media_folder_register("messages")  # photos sent in messages
