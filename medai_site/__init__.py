"""MedAI site: settings, Celery app, root URLs and the shared platform sub-apps."""

from medai_site.celery import app as celery_app

__all__ = ["celery_app"]
