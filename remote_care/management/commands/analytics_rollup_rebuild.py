"""Recompute the population roll-ups from the raw observation sets (back-fill)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from remote_care.analytics.services import analytics_rollup_rebuild


class Command(BaseCommand):
    help = (
        "Recompute every population roll-up (patient-days and day x cohort cells) from the "
        "raw observation sets; idempotent. Run after a bulk load or after care teams, SpO2 "
        "scales or demographics changed."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        began = time.perf_counter()
        written = analytics_rollup_rebuild()
        self.stdout.write(
            f"Rolled up {written} patient-days in {time.perf_counter() - began:.1f} s."
        )
