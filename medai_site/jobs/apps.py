from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "medai_site.jobs"
    label = "jobs"
    verbose_name = "Jobs"
