from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "medai_site.jobs"
    label = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from medai_site.core.navigation import register_nav_item
        from medai_site.core.roles import Role

        # Connects the worker's own start / heartbeat / shutdown reports (inert in the web
        # process: those signals are only sent inside a Celery worker).
        from medai_site.jobs import worker_signals  # noqa: F401

        # Last: every role's own jobs, after the sections they concern.
        register_nav_item(label="Jobs", url_name="jobs:list", order=1000)
        # Where the AI work runs: model admins and hospital IT (superusers hold no role).
        register_nav_item(
            label="Fleet",
            url_name="jobs:fleet",
            order=1010,
            roles=(Role.MODEL_ADMIN,),
            superusers_too=True,
        )
