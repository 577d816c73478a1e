"""The deterioration model in shadow: the observation-set windows the sweep has just scored
with the version in service, scored again by the shadow GRU on the same windows. Agreement is
on the risk band each version's own operating points give (what would have alerted). The
scoring itself is in services.py, beside the sweep it follows."""

from __future__ import annotations

ITEM_TYPE = "remote_care.observation"
INSUFFICIENT = "insufficient data"
NOTE = (
    "Deterioration risk: every observation set the sweep scores with the version in service "
    "is scored by the shadow on the same 48 h window; agreement is on the risk band each "
    "version's own operating points give (low / elevated / high, or insufficient data). "
    "Alerts come from NEWS2 rules, not from this model, so clinicians' acknowledgements are "
    "no label for it: only agreement with the active version is shown."
)


def risk_band(risk: float | None, cuts: dict[str, float] | None) -> str:
    """The band a risk falls in at a version's operating points ("scored" without any)."""
    if risk is None:
        return INSUFFICIENT
    if cuts is None:
        return "scored"
    if risk >= cuts["high"]:
        return "high"
    return "elevated" if risk >= cuts["elevated"] else "low"
