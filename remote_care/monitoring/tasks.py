"""Background work of monitoring: keeping the vital-sign roll-ups up to date."""

from __future__ import annotations

from medai_site.celery import app
from remote_care.monitoring.services import vitals_rollup_sweep

# Batches one beat may roll up before leaving the rest to the next (bounded run time).
SWEEP_BATCHES = 20


@app.task(
    name="remote_care.vitals_rollup_sweep",
    ignore_result=True,
    time_limit=300,
    soft_time_limit=270,
)
def vitals_rollup_sweep_task() -> int:
    """Roll up observations stored since the last sweep, batch after batch until caught up or
    SWEEP_BATCHES done (beat, every minute); idempotent. Returns the observations read."""
    done = 0
    for _ in range(SWEEP_BATCHES):
        read = vitals_rollup_sweep()
        done += read
        if not read:
            break
    return done
