"""Alerting policy: thresholds, escalation, cooldown (one episode = one alert), trend rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from remote_care.physiology.news2 import (
    AlertKind,
    AlertPolicy,
    AlertState,
    Observation,
    ScoredSet,
    evaluate_alerts,
    replay_alerts,
    score_news2,
)

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
NORMAL = {
    "respiration_rate": 16,
    "spo2": 97,
    "on_oxygen": False,
    "systolic_bp": 120,
    "pulse": 70,
    "consciousness": "A",
    "temperature": 37.0,
}
# Each step adds 2 (never 3); an odd total adds a 1 from a parameter not yet used. This builds
# any total 0..12 without a red score.
TWOS = [("on_oxygen", True), ("respiration_rate", 22), ("pulse", 115), ("systolic_bp", 95),
        ("temperature", 39.5), ("spo2", 93)]  # fmt: skip
ONES = [("respiration_rate", 10), ("pulse", 95), ("systolic_bp", 105), ("temperature", 38.5),
        ("spo2", 95)]  # fmt: skip


def obs_total(total: int) -> Observation:
    change = dict(TWOS[: total // 2])
    if total % 2:
        name, value = next((n, v) for n, v in ONES if n not in change)
        change[name] = value
    return Observation(**{**NORMAL, **change})


def series(*points: tuple[float, int] | tuple[float, Observation]) -> list[ScoredSet]:
    """(hours after T0, total or Observation) pairs -> scored sets."""
    out = []
    for hours, what in points:
        obs = what if isinstance(what, Observation) else obs_total(what)
        out.append(ScoredSet(T0 + timedelta(hours=hours), score_news2(obs)))
    return out


def kinds(alerts) -> list[str]:
    return [a.kind.name for a in alerts]


def test_helper_builds_totals_without_red_scores():
    for total in range(13):
        result = score_news2(obs_total(total))
        assert result.total == total and not result.any_single_three


def test_no_alert_below_every_threshold():
    alerts, state = replay_alerts(series((0, 0), (4, 2), (8, 4), (12, 3)))
    assert alerts == [] and state.open_level is AlertKind.NONE


def test_urgent_then_emergency_escalation_raises_two_alerts():
    alerts, state = replay_alerts(series((0, 2), (1, 5), (2, 7)))
    assert kinds(alerts) == ["URGENT", "EMERGENCY"]
    assert "escalation from URGENT" in alerts[1].reason
    assert state.open_level is AlertKind.EMERGENCY
    assert state.episode_started_at == T0 + timedelta(hours=1)


def test_straight_to_emergency_is_one_alert():
    alerts, _ = replay_alerts(series((0, 8), (1, 9), (2, 7)))
    assert kinds(alerts) == ["EMERGENCY"]


def test_same_level_within_an_episode_is_one_alert():
    alerts, _ = replay_alerts(series((0, 5), (1, 6), (2, 5), (3, 6), (9, 5), (20, 6)))
    assert kinds(alerts) == ["URGENT"]  # the episode never closed, however long it lasts


def test_de_escalation_and_re_escalation_inside_an_episode_is_not_a_new_alert():
    alerts, _ = replay_alerts(series((0, 7), (1, 5), (2, 7)))
    assert kinds(alerts) == ["EMERGENCY"]


def test_flapping_around_threshold_within_cooldown_is_one_alert():
    alerts, state = replay_alerts(series((0, 5), (1, 4), (2, 5), (3, 4), (3.5, 6)))
    assert kinds(alerts) == ["URGENT"]
    assert state.open_level is AlertKind.URGENT


def test_new_episode_after_cooldown_raises_again():
    alerts, _ = replay_alerts(series((0, 5), (1, 2), (5, 5)))  # 5 h later, cooldown is 4 h
    assert kinds(alerts) == ["URGENT", "URGENT"]


def test_cooldown_of_a_higher_level_covers_a_lower_one():
    alerts, _ = replay_alerts(series((0, 7), (1, 2), (2, 5)))
    assert kinds(alerts) == ["EMERGENCY"]


def test_cooldown_applies_to_escalation_after_a_brief_recovery():
    # 7 -> recovers -> 5 -> 7 within the cooldown: the emergency was already raised.
    alerts, _ = replay_alerts(series((0, 7), (1, 2), (1.5, 5), (2, 7)))
    assert kinds(alerts) == ["EMERGENCY"]


def test_red_score_alert_then_escalation_to_urgent():
    red = Observation(**{**NORMAL, "consciousness": "C"})  # total 3, a single 3
    alerts, _ = replay_alerts(series((0, red), (1, 5)))
    assert kinds(alerts) == ["RED_SCORE", "URGENT"]
    assert "consciousness" in alerts[0].reason


def test_partial_set_can_raise_but_cannot_close_an_episode():
    partial_high = Observation(respiration_rate=30, systolic_bp=85)  # 3 + 3 = partial 6
    partial_low = Observation(pulse=70)  # partial 0: not evidence of recovery
    alerts, state = replay_alerts(series((0, partial_high), (1, partial_low), (5, partial_high)))
    assert kinds(alerts) == ["URGENT"]
    assert alerts[0].is_partial and "partial NEWS2" in alerts[0].reason
    assert state.open_level is AlertKind.URGENT
    # A complete set below threshold does close it; after the cooldown a new episode alerts.
    alerts, _ = replay_alerts(series((0, partial_high), (1, 2), (5, partial_high)))
    assert kinds(alerts) == ["URGENT", "URGENT"]


def test_trend_rule_fires_on_a_sustained_rise():
    alerts, _ = replay_alerts(series((0, 0), (2, 1), (4, 2)))
    assert kinds(alerts) == ["TREND"]
    assert "0 -> 2" in alerts[0].reason


def test_trend_rule_needs_a_monotone_rise_within_the_window():
    assert replay_alerts(series((0, 0), (2, 2), (4, 1)))[0] == []  # not sustained
    assert replay_alerts(series((0, 1), (2, 1), (4, 2)))[0] == []  # rise of 1 only
    assert replay_alerts(series((0, 0), (4, 1), (8, 2)))[0] == []  # 8 h > 6 h window
    assert replay_alerts(series((0, 0), (2, 2)))[0] == []  # fewer than 3 sets


def test_trend_rule_ignores_partial_sets():
    partial = Observation(pulse=115)
    alerts, _ = replay_alerts(series((0, 0), (1, partial), (2, 1), (3, 2)))
    assert kinds(alerts) == ["TREND"]
    # A partial latest set never fires a trend (a parameter appearing fakes a rise).
    assert replay_alerts(series((0, 0), (1, 1), (2, Observation(pulse=115))))[0] == []


def test_trend_rule_has_its_own_cooldown():
    alerts, _ = replay_alerts(series((0, 0), (1, 1), (2, 2), (3, 3), (9, 1), (10, 2), (11, 3)))
    # 3 h: 1->3 again but within the 6 h trend cooldown; 11 h: a new rise after it.
    assert kinds(alerts) == ["TREND", "TREND"]
    assert [a.raised_at for a in alerts] == [T0 + timedelta(hours=2), T0 + timedelta(hours=11)]


def test_trend_rule_stays_quiet_once_thresholds_take_over():
    alerts, _ = replay_alerts(series((0, 1), (1, 2), (2, 3), (3, 4), (4, 5)))
    assert kinds(alerts) == ["TREND", "URGENT"]
    alerts, _ = replay_alerts(series((0, 3), (1, 4), (2, 6)))
    assert kinds(alerts) == ["URGENT"]
    # A red score is below the urgent threshold: the trend still speaks.
    red = Observation(**{**NORMAL, "consciousness": "V"})
    alerts, _ = replay_alerts(series((0, 1), (1, red), (2, 3)))
    assert kinds(alerts) == ["RED_SCORE", "TREND"]


def test_policy_is_configurable():
    policy = AlertPolicy(cooldown=timedelta(minutes=30), trend_sets=2, trend_rise=3)
    alerts, _ = replay_alerts(series((0, 5), (0.5, 2), (1, 5)), policy=policy)
    # 1 h: the cooldown (30 min) is over, so URGENT again; the 2 -> 5 rise over 2 sets is no
    # trend alert because the set is at the urgent threshold.
    assert kinds(alerts) == ["URGENT", "URGENT"]
    with pytest.raises(ValueError):
        AlertPolicy(urgent_total=7, emergency_total=5)


def test_evaluate_is_pure_and_deterministic():
    sets = series((0, 2), (1, 5))
    state = AlertState()
    first = evaluate_alerts(sets, state)
    second = evaluate_alerts(sets, state)
    assert first == second
    assert state == AlertState()  # input state untouched
    assert kinds(first.alerts) == ["URGENT"]
    assert first.alerts[0].raised_at == T0 + timedelta(hours=1)


def test_state_round_trips_through_json():
    decision = evaluate_alerts(series((0, 7)))
    data = json.loads(json.dumps(decision.to_dict()))
    restored = AlertState.from_dict(data["state"])
    assert restored == decision.state
    # Continuing from the restored state behaves like continuing from the original.
    nxt = series((0, 7), (1, 8))
    assert evaluate_alerts(nxt, restored) == evaluate_alerts(nxt, decision.state)


def test_bad_input_is_rejected():
    naive = [ScoredSet(datetime(2024, 1, 1), score_news2(obs_total(5)))]  # noqa: DTZ001 (under test)
    with pytest.raises(ValueError, match="timezone"):
        evaluate_alerts(naive)
    with pytest.raises(ValueError, match="chronological"):
        evaluate_alerts(list(reversed(series((0, 1), (1, 5)))))
    decision = evaluate_alerts(series((2, 5)))
    with pytest.raises(ValueError, match="older"):
        evaluate_alerts(series((1, 5)), decision.state)


def test_empty_series_changes_nothing():
    decision = evaluate_alerts([], AlertState())
    assert decision.alerts == () and decision.state == AlertState()
