from django.apps import AppConfig


class RemoteCareConfig(AppConfig):
    name = "remote_care"
    verbose_name = "Remote care"

    def ready(self) -> None:
        from medai_site.core.media import media_folder_register
        from medai_site.registry.catalogue import model_kind_register
        from remote_care import jobs, timeline  # noqa: F401  (job kinds, patient-page panel)
        from remote_care.risk import RISK_TASK, risk_model_from_bytes

        media_folder_register("messages")  # photos sent in messages

        model_kind_register(
            label="deterioration risk model", tasks=lambda: [RISK_TASK], load=risk_model_from_bytes
        )
