"""WSGI entry point (gunicorn medai_site.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medai_site.settings.local")
application = get_wsgi_application()
