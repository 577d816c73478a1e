from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "medai_site.patients"
    label = "patients"
    verbose_name = "Patients and care teams"

    def ready(self) -> None:
        from medai_site.core.navigation import register_nav_item
        from medai_site.core.roles import Role
        from medai_site.patients import platform_timeline, tasks  # noqa: F401  (registrations)

        register_nav_item(
            label="Patients", url_name="patients:list", roles=(Role.CLINICIAN,), order=10
        )
