"""bench/programme_replay.py simulates what it claims: stable patients score NEWS2 low, the
deteriorating ones end at NEWS2 >= 7 (so the replay makes the server raise alerts), every
set passes the API's validation, and an upload carries the sets of its interval in order."""

from __future__ import annotations

from bench.programme_replay import Plan, vitals
from remote_care.devices.serializers import observations_validate
from remote_care.physiology.news2 import Observation, score_news2

HORIZON = 6 * 3600


def _plan() -> Plan:
    return Plan(
        tokens=["t"] * 50,
        deteriorating={3: 3600.0, 17: 7200.0},
        interval_s=300,
        upload_s=900,
        horizon_s=HORIZON,
        speed=60.0,
        ramp_s=3600.0,
        sim_base=1_700_000_000.0,
        wall_start=1_700_000_000.0 + HORIZON,
        wall_stop=1_700_000_000.0 + HORIZON + 600,
        port=1,
    )


def _news2(values: dict) -> int:
    return score_news2(Observation.from_vitals(values, spo2_scale=1)).total


def test_stable_patients_stay_low_and_deteriorating_ones_reach_emergency() -> None:
    plan = _plan()
    stable = [
        _news2(vitals(plan, d, s))
        for d in range(50)
        if d not in (3, 17)
        for s in range(0, HORIZON, 900)
    ]
    assert max(stable) <= 4, max(stable)
    assert sum(stable) / len(stable) < 1.5
    for device, onset in plan.deteriorating.items():
        assert _news2(vitals(plan, device, int(onset) - 300)) <= 4
        assert _news2(vitals(plan, device, int(onset + plan.ramp_s) + 300)) >= 7


def test_every_simulated_set_passes_the_api_validation() -> None:
    plan = _plan()
    plan.sim_base = 1_000_000_000.0  # 2001-09-09: after the API's earliest accepted date
    items = [vitals(plan, d, s) for d in (0, 3, 17) for s in range(0, HORIZON, 300)]
    valid, _index, rejected = observations_validate(items)
    assert rejected == [] and len(valid) == len(items)
