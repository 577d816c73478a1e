from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "medai_site.jobs"
    label = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from medai_site.core.navigation import register_nav_item

        # Last: every role's own jobs, after the sections they concern.
        register_nav_item(label="Jobs", url_name="jobs:list", order=1000)
