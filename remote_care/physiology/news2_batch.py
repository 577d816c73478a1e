"""NEWS2 for a batch of observation sets at once, and the alerting policy replayed over it.

``score_news2_batch`` gives, for columns of vital signs, exactly what ``score_news2`` gives for
each set (it is tested against it), at a cost that grows with the number of *distinct* values
per parameter rather than with the sets: every distinct value is charted and looked up once by
``news2``'s own ``_chart``/``_lookup`` (so the half-up rounding is the Decimal one), and the
sub-scores are gathered back with numpy. The summary stored with each set
(``News2Result.summary_dict``) is a function of the seven sub-scores and the SpO2 scale, so it
is built once per distinct combination.

``replay_alerts_batch`` decides the same alerts and final state as calling ``evaluate_alerts``
on each new set in turn (after ``history``, over a sliding window), but builds the full
``News2Result`` only for the sets where the policy could say something: a set at or above a
threshold, or one whose totals could make the trend rule fire. Quiet sets only advance the
state. Nothing here imports Django.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from remote_care.physiology.news2 import (
    ACVPU,
    CONSCIOUSNESS_SCORES,
    OXYGEN_SCORE,
    Alert,
    AlertKind,
    AlertPolicy,
    AlertState,
    Parameter,
    ScoredSet,
    _chart,
    _lookup,
    evaluate_alerts,
    risk_for,
    trend_rise,
)

__all__ = ["News2Batch", "SetLevel", "replay_alerts_batch", "score_news2_batch", "summary_of"]

_ORDER = tuple(Parameter)
_MISSING = -1
# Sub-score codes: one base-5 digit per parameter in chart order (4 = missing).
_BASE = 5


@dataclass(frozen=True)
class News2Batch:
    """Per-set totals, partial flags, single-3 flags and sub-score codes (chart order)."""

    totals: NDArray[np.int64]
    partial: NDArray[np.bool_]
    any_single_three: NDArray[np.bool_]
    codes: NDArray[np.int64]
    spo2_scale: int

    def summaries(self) -> list[dict[str, Any]]:
        """The stored summary of each set (``News2Result.summary_dict``); equal sets share one
        dict, so treat them as read-only."""
        unique, inverse = np.unique(self.codes, return_inverse=True)
        built = [summary_of(_decode(int(code)), self.spo2_scale) for code in unique]
        return [built[i] for i in inverse.tolist()]


def _decode(code: int) -> tuple[int, ...]:
    digits = []
    for _ in _ORDER:
        code, digit = divmod(code, _BASE)
        digits.append(_MISSING if digit == _BASE - 1 else digit)
    return tuple(reversed(digits))


def summary_of(scores: Sequence[int], spo2_scale: int) -> dict[str, Any]:
    """``News2Result.summary_dict`` from the sub-scores in chart order (-1 = missing)."""
    present = [s for s in scores if s != _MISSING]
    missing = [p for p, s in zip(_ORDER, scores, strict=True) if s == _MISSING]
    total = sum(present)
    any_three = any(s == 3 for s in present)
    if missing:
        label = f"partial NEWS2 >={total} (missing: {', '.join(p.value for p in missing)})"
    else:
        label = f"NEWS2 {total}"
    return {
        "sub_scores": {
            p.value: {"score": s} for p, s in zip(_ORDER, scores, strict=True) if s != _MISSING
        },
        "total": total,
        "any_single_three": any_three,
        "risk": risk_for(total, any_three).value,
        "missing": [p.value for p in missing],
        "is_partial": bool(missing),
        "label": label,
        "spo2_scale": spo2_scale,
    }


def _numeric(name: str, table: str, values: NDArray[np.float64]) -> NDArray[np.int64]:
    """Sub-scores of a numeric column (NaN = not recorded: -1), one lookup a distinct value."""
    scores = np.full(values.shape, _MISSING, dtype=np.int64)
    present = ~np.isnan(values)
    if present.any():
        unique, inverse = np.unique(values[present], return_inverse=True)
        looked_up = np.array([_lookup(table, _chart(name, float(v))) for v in unique.tolist()])
        scores[present] = looked_up[inverse]
    return scores


def _spo2(
    values: NDArray[np.float64], oxygen: NDArray[np.int64], spo2_scale: int
) -> NDArray[np.int64]:
    """SpO2 sub-scores; on scale 2 they depend on air/oxygen (0 air, 1 oxygen, -1 unknown)."""
    if spo2_scale == 1:
        return _numeric("spo2", "spo2_scale_1", values)
    scores = np.full(values.shape, _MISSING, dtype=np.int64)
    present = ~np.isnan(values)
    if not present.any():
        return scores
    pairs = np.stack([values[present], oxygen[present].astype(np.float64)], axis=1)
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    looked_up = []
    for value, flag in unique.tolist():
        charted = _chart("spo2", value)
        if flag < 0 and charted >= 93:
            looked_up.append(_MISSING)  # indeterminate, as in score_news2
        else:
            table = "spo2_scale_2_on_oxygen" if flag > 0 else "spo2_scale_2_on_air"
            looked_up.append(_lookup(table, charted))
    scores[present] = np.array(looked_up, dtype=np.int64)[inverse.reshape(-1)]
    return scores


_CONSCIOUSNESS = {level.value: score for level, score in CONSCIOUSNESS_SCORES.items()}


def _column(values: Sequence[float | None]) -> NDArray[np.float64]:
    array = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    if not np.isfinite(array[~np.isnan(array)]).all():
        raise ValueError("vital signs must be finite numbers")
    return array


def score_news2_batch(
    columns: Mapping[str, Sequence[Any]], *, spo2_scale: int, size: int
) -> News2Batch:
    """NEWS2 of ``size`` sets given as columns named as devices name them
    (``respiratory_rate``, ``spo2``, ``on_oxygen``, ``systolic_bp``, ``heart_rate``,
    ``consciousness``, ``temperature``; a missing column or None is not recorded); the same
    numbers as ``score_news2`` per set. ValueError/TypeError on implausible values."""
    if spo2_scale not in (1, 2):
        raise ValueError(f"spo2_scale must be 1 or 2, got {spo2_scale!r}")
    none: list[None] = [None] * size

    def column(name: str) -> NDArray[np.float64]:
        return _column(columns.get(name, none))

    oxygen_flags = columns.get("on_oxygen", none)
    oxygen = np.array(
        [-1 if flag is None else int(flag) for flag in oxygen_flags], dtype=np.int64
    ).reshape(size)
    air_or_oxygen = np.where(oxygen < 0, _MISSING, np.where(oxygen > 0, OXYGEN_SCORE, 0))
    consciousness = np.array(
        [
            _MISSING if not c else _CONSCIOUSNESS[ACVPU(str(c).strip().upper()).value]
            for c in columns.get("consciousness", none)
        ],
        dtype=np.int64,
    ).reshape(size)
    scores = np.stack(
        [
            _numeric("respiration_rate", "respiration_rate", column("respiratory_rate")),
            _spo2(column("spo2"), oxygen, spo2_scale),
            air_or_oxygen,
            _numeric("systolic_bp", "systolic_bp", column("systolic_bp")),
            _numeric("pulse", "pulse", column("heart_rate")),
            consciousness,
            _numeric("temperature", "temperature", column("temperature")),
        ],
        axis=1,
    ).reshape(size, len(_ORDER))
    missing = scores == _MISSING
    digits = np.where(missing, _BASE - 1, scores)
    codes = digits @ (_BASE ** np.arange(len(_ORDER) - 1, -1, -1, dtype=np.int64))
    return News2Batch(
        totals=np.where(missing, 0, scores).sum(axis=1),
        partial=missing.any(axis=1),
        any_single_three=(scores == 3).any(axis=1),
        codes=codes,
        spo2_scale=spo2_scale,
    )


@dataclass(frozen=True, slots=True)
class SetLevel:
    """What the alerting policy reads of a new scored set before it needs the whole result."""

    taken_at: datetime
    total: int
    any_single_three: bool
    is_partial: bool


def replay_alerts_batch(
    *,
    history: Sequence[ScoredSet],
    new: Sequence[SetLevel],
    full: Callable[[int], ScoredSet],
    state: AlertState,
    window: int,
    policy: AlertPolicy | None = None,
) -> tuple[list[tuple[int, Alert]], AlertState]:
    """The alerts (with the index of the new set raising each) and final state that calling
    ``evaluate_alerts(series[-window:], state)`` after appending each new set in time order
    gives, skipping sets at or before ``state.last_evaluated_at`` as late data. ``full(i)``
    gives new set ``i`` with its whole result; it is called only where the policy might act."""
    policy = policy or AlertPolicy()
    light: list[tuple[datetime, int, bool]] = [
        (s.taken_at, s.result.total, s.result.is_partial) for s in history
    ]
    series: list[ScoredSet | int] = list(history)  # an int stands for new set i, built lazily
    raised: list[tuple[int, Alert]] = []
    quiet_until: datetime | None = None  # last quiet set's time, not yet put in the state
    for index, item in enumerate(new):
        last = quiet_until or state.last_evaluated_at
        if last and item.taken_at <= last:
            continue
        light.append((item.taken_at, item.total, item.is_partial))
        series.append(index)
        if _quiet(item, light[-window:], policy):
            quiet_until = item.taken_at
            # A complete set below every threshold ends an episode.
            if not item.is_partial and state.open_level is not AlertKind.NONE:
                state = replace(state, open_level=AlertKind.NONE, episode_started_at=None)
            elif not item.is_partial and state.episode_started_at is not None:
                state = replace(state, episode_started_at=None)
            continue
        if quiet_until is not None:
            state, quiet_until = replace(state, last_evaluated_at=quiet_until), None
        for position in range(max(0, len(series) - window), len(series)):
            entry = series[position]
            if isinstance(entry, int):
                series[position] = full(entry)
        window_sets = [s for s in series[-window:] if isinstance(s, ScoredSet)]
        decision = evaluate_alerts(window_sets, state, policy)
        state = decision.state
        raised.extend((index, alert) for alert in decision.alerts)
    if quiet_until is not None:
        state = replace(state, last_evaluated_at=quiet_until)
    return raised, state


def _quiet(item: SetLevel, recent: list[tuple[datetime, int, bool]], policy: AlertPolicy) -> bool:
    """True when evaluate_alerts would raise nothing for this set (below every threshold, and
    the trend rule cannot hold on it), so that only the state's times move."""
    if item.total >= policy.urgent_total or item.any_single_three:
        return False
    if item.is_partial or item.total < policy.trend_rise:
        return True
    complete = [(t, total) for t, total, partial in recent if not partial]
    return trend_rise(complete, policy) is None
