"""NEWS2 for a batch gives what score_news2 gives set by set, and the batch replay of the
alerting policy raises what evaluate_alerts raises set by set (no database)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from remote_care.physiology.news2 import (
    AlertState,
    Observation,
    ScoredSet,
    evaluate_alerts,
    score_news2,
)
from remote_care.physiology.news2_batch import SetLevel, replay_alerts_batch, score_news2_batch

NAMES = ("respiratory_rate", "spo2", "systolic_bp", "heart_rate", "temperature")
# Values on and around the chart's band edges and half-way points, so that the half-up
# rounding (35.05 charts 35.1, 35.04 charts 35.0) is exercised as well as the lookups.
EDGES = {
    "respiratory_rate": [3, 8, 8.5, 8.49, 9, 11, 11.5, 12, 20, 20.5, 21, 24, 24.5, 25, 40],
    "spo2": [60, 83, 83.5, 84, 85, 87, 88, 91, 91.5, 92, 93, 93.49, 94, 95, 96, 96.5, 97, 100],
    "systolic_bp": [50, 90, 90.5, 91, 100, 101, 110, 110.5, 111, 219, 219.5, 220, 260],
    "heart_rate": [30, 40, 40.5, 41, 50, 51, 90, 90.5, 91, 110, 111, 130, 130.5, 131, 200],
    "temperature": [30.0, 35.0, 35.04, 35.05, 35.1, 36.0, 36.05, 36.1, 38.0, 38.05, 39.0, 39.1],
}


def _random_sets(rng: random.Random, n: int) -> list[dict]:
    sets = []
    for _ in range(n):
        item: dict = {}
        for name in NAMES:
            roll = rng.random()
            if roll < 0.15:
                item[name] = None
            elif roll < 0.6:
                item[name] = float(rng.choice(EDGES[name]))
            else:
                low, high = EDGES[name][0], EDGES[name][-1]
                item[name] = round(rng.uniform(low, high), rng.choice([0, 1, 2]))
        item["on_oxygen"] = rng.choice([None, True, False])
        item["consciousness"] = rng.choice([None, "", "A", "C", "V", "P", "U"])
        sets.append(item)
    return sets


def _columns(sets: list[dict]) -> dict[str, list]:
    keys = (*NAMES, "on_oxygen", "consciousness")
    return {key: [s.get(key) for s in sets] for key in keys}


@pytest.mark.parametrize("scale", [1, 2])
def test_batch_scores_equal_the_scores_set_by_set(scale):
    rng = random.Random(scale)
    sets = _random_sets(rng, 3000)
    batch = score_news2_batch(_columns(sets), spo2_scale=scale, size=len(sets))
    summaries = batch.summaries()
    for i, values in enumerate(sets):
        one = score_news2(Observation.from_vitals(values, spo2_scale=scale))
        assert batch.totals[i] == one.total, values
        assert bool(batch.partial[i]) == one.is_partial, values
        assert bool(batch.any_single_three[i]) == one.any_single_three, values
        assert summaries[i] == one.summary_dict(), values


def test_summary_keeps_what_the_pages_and_analytics_read():
    one = score_news2(
        Observation.from_vitals({"heart_rate": 135, "spo2": 97}, spo2_scale=1)
    ).summary_dict()
    assert one["label"] == (
        "partial NEWS2 >=3 (missing: respiration_rate, air_or_oxygen, systolic_bp, "
        "consciousness, temperature)"
    )
    assert one["any_single_three"] is True and one["sub_scores"]["pulse"] == {"score": 3}
    assert one["risk"] == "low-medium" and "response" not in one


def test_batch_refuses_what_score_news2_refuses():
    with pytest.raises(ValueError, match="plausible"):
        score_news2_batch({"heart_rate": [72.0, 400.0]}, spo2_scale=1, size=2)
    with pytest.raises(ValueError, match="finite"):
        score_news2_batch({"heart_rate": [float("inf")]}, spo2_scale=1, size=1)
    with pytest.raises(ValueError, match="spo2_scale"):
        score_news2_batch({}, spo2_scale=3, size=0)


def test_an_empty_batch_scores_nothing():
    batch = score_news2_batch({}, spo2_scale=1, size=0)
    assert batch.totals.shape == (0,) and batch.summaries() == []


T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)


def _series(rng: random.Random, n: int, start: datetime) -> list[ScoredSet]:
    """A patient who drifts between well, deteriorating and partial sets, minutes apart."""
    out, t = [], start
    level = 0.0
    for _ in range(n):
        t += timedelta(minutes=rng.choice([1, 5, 30, 90, 240]))
        level = min(max(level + rng.uniform(-1.5, 1.6), 0), 6)
        values = {
            "respiratory_rate": 14 + 3 * level,
            "spo2": 97 - level,
            "on_oxygen": level > 4 if rng.random() > 0.1 else None,
            "systolic_bp": 125 - 6 * level,
            "heart_rate": 72 + 9 * level,
            "consciousness": "A" if level < 5.5 else "C",
            "temperature": 37 + level / 3 if rng.random() > 0.2 else None,
        }
        result = score_news2(Observation.from_vitals(values, spo2_scale=1))
        out.append(ScoredSet(taken_at=t, result=result))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_batch_replay_raises_what_evaluating_each_set_raises(seed):
    rng = random.Random(seed)
    window = 11
    history = _series(rng, rng.choice([0, 3, 10]), T0)
    start = history[-1].taken_at if history else T0
    new = _series(rng, 400, start)
    # The state as an earlier batch left it, sometimes later than some of the new sets.
    state = AlertState()
    if seed % 3 == 0:
        state = AlertState(last_evaluated_at=new[5].taken_at)

    expected, expected_state, series = [], state, list(history)
    for index, scored in enumerate(new):
        last = expected_state.last_evaluated_at
        if last and scored.taken_at <= last:
            continue
        series.append(scored)
        decision = evaluate_alerts(series[-window:], expected_state)
        expected_state = decision.state
        expected.extend((index, alert) for alert in decision.alerts)

    built: list[int] = []

    def full(i: int) -> ScoredSet:
        built.append(i)
        return new[i]

    levels = [
        SetLevel(s.taken_at, s.result.total, s.result.any_single_three, s.result.is_partial)
        for s in new
    ]
    raised, final = replay_alerts_batch(
        history=history, new=levels, full=full, state=state, window=window
    )
    assert raised == expected
    assert final == expected_state
    assert expected, "the generated patient does raise alerts"
    assert len(built) < len(new)  # quiet sets are never built


def test_quiet_batch_only_moves_the_state_time():
    levels = [SetLevel(T0 + timedelta(minutes=i), 0, False, i % 2 == 0) for i in range(50)]
    raised, state = replay_alerts_batch(
        history=[], new=levels, full=lambda i: pytest.fail("built a quiet set"),
        state=AlertState(), window=11,
    )  # fmt: skip
    assert raised == [] and state == AlertState(last_evaluated_at=levels[-1].taken_at)


def test_codes_tell_apart_every_sub_score_combination():
    columns = {"heart_rate": [72.0, 135.0, None], "spo2": [97.0, 97.0, 97.0]}
    batch = score_news2_batch(columns, spo2_scale=1, size=3)
    assert len(np.unique(batch.codes)) == 3
