"""Platform housekeeping tasks (scheduled by Celery beat)."""

from __future__ import annotations

from django.conf import settings

from medai_site.celery import app
from medai_site.core.media import media_orphans_sweep


@app.task(name="core.media_sweep", ignore_result=True, time_limit=600, soft_time_limit=540)
def media_sweep() -> int:
    """Delete orphan media files older than the grace period; idempotent. Returns the count."""
    return len(media_orphans_sweep(older_than=settings.MEDAI_ORPHAN_MEDIA_GRACE).deleted)
