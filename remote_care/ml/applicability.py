"""What a deterioration score had to go on, and whether it may be given at all.

The model was trained on ICU stays (PhysioNet/CinC 2012 set A) and is used on home-monitoring
vitals. A score is only given when the window holds enough data (a minimum-data rule) and
every vital sign lies inside the range the model saw in training; otherwise the result is
"insufficient data: <reason>", never a number. The ranges and the rule are recorded in the
model artifact at training time (``fit_input_contract``); artifacts trained before that carry
none and use ``FALLBACK_CONTRACT``, measured the same way on the whole of set A and stated as
such.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from remote_care.ml.physionet import TIME_SERIES_VARIABLES, VITALS_TO_PHYSIONET, Stay

_VAR_INDEX = {v: i for i, v in enumerate(TIME_SERIES_VARIABLES)}
# Central 99.8 % of the training values per channel: the tails beyond are a handful of ICU
# readings each, too few for the model to have learnt anything reliable there.
LOW_PERCENTILE, HIGH_PERCENTILE = 0.1, 99.9
# Minimum data: readings in at least 2 distinct hours (a trend, not one snapshot) and at least
# 3 of the 6 vital-sign channels (the model was trained on charts with all of them).
MIN_HOURS = 2
MIN_CHANNELS = 3

LABELS = {
    "HR": ("heart rate", "/min"),
    "SaO2": ("SpO2", "%"),
    "RespRate": ("respiratory rate", "/min"),
    "Temp": ("temperature", "°C"),
    "NISysABP": ("systolic BP", "mmHg"),
    "NIDiasABP": ("diastolic BP", "mmHg"),
}

#: Measured with fit_input_contract on the 3,996 stays with outcomes of PhysioNet 2012 set A
#: (central 99.8 % of each channel's plausible values), for models trained before contracts
#: were recorded.
FALLBACK_CONTRACT: dict[str, Any] = {
    "source": "fallback: PhysioNet 2012 set A ranges (the model's training data), "
    "not recorded with this model version",
    "ranges": {
        "HR": [41.0, 162.0],
        "SaO2": [51.7, 100.0],
        "RespRate": [6.0, 47.0],
        "Temp": [33.1, 40.1],
        "NISysABP": [59.0, 210.0],
        "NIDiasABP": [17.0, 123.0],
    },
    "min_hours": MIN_HOURS,
    "min_channels": MIN_CHANNELS,
}


def fit_input_contract(stays: Sequence[Stay], source: str = "training stays") -> dict[str, Any]:
    """Per vital channel the central 99.8 % of the training values, and the minimum-data
    rule, as recorded in a model artifact."""
    ranges: dict[str, list[float]] = {}
    for channel in VITALS_TO_PHYSIONET.values():
        idx = _VAR_INDEX[channel]
        values = np.concatenate([s.values[s.var == idx] for s in stays] or [np.zeros(0)])
        if len(values):
            lo, hi = np.percentile(values, [LOW_PERCENTILE, HIGH_PERCENTILE])
            ranges[channel] = [round(float(lo), 1), round(float(hi), 1)]
    return {
        "source": f"{source} (n = {len(stays)})",
        "ranges": ranges,
        "min_hours": MIN_HOURS,
        "min_channels": MIN_CHANNELS,
    }


def check_inputs(stay: Stay, contract: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a window had (hours covered, hours with data, channels present) and, when it may
    not be scored, why: {'hours_covered', 'hours_with_data', 'channels', 'sufficient',
    'reason', 'contract'}."""
    contract = contract or FALLBACK_CONTRACT
    ranges: Mapping[str, Sequence[float]] = contract["ranges"]
    times = np.asarray(stay.times, dtype=float)
    hours_covered = float((times.max() - times.min()) / 60) if len(times) else 0.0
    hours_with_data = len(np.unique(np.floor(times / 60))) if len(times) else 0
    present = [ch for ch in VITALS_TO_PHYSIONET.values() if np.any(stay.var == _VAR_INDEX[ch])]
    reasons: list[str] = []
    if hours_with_data < contract["min_hours"]:
        reasons.append(
            f"readings in {hours_with_data} hour{'s' if hours_with_data != 1 else ''} of the "
            f"48-h window; the model needs at least {contract['min_hours']}"
        )
    if len(present) < contract["min_channels"]:
        reasons.append(
            f"{len(present)} of 6 vital signs present; the model needs at least "
            f"{contract['min_channels']}"
        )
    for ch in present:
        if ch not in ranges:
            continue
        lo, hi = ranges[ch]
        vals = stay.values[stay.var == _VAR_INDEX[ch]]
        bad = vals[(vals < lo) | (vals > hi)]
        if len(bad):
            name, unit = LABELS[ch]
            worst = float(bad[np.argmax(np.abs(bad - (lo + hi) / 2))])
            reasons.append(
                f"{name} {worst:g} {unit} is outside the training range {lo:g}–{hi:g} {unit}"
            )
    return {
        "hours_covered": round(hours_covered, 1),
        "hours_with_data": int(hours_with_data),
        "channels": [LABELS[ch][0] for ch in present],
        "sufficient": not reasons,
        "reason": "; ".join(reasons),
        "contract": "recorded with the model" if contract is not FALLBACK_CONTRACT else "fallback",
    }


_VITAL_VARS = np.array([_VAR_INDEX[ch] for ch in VITALS_TO_PHYSIONET.values()], dtype=np.int64)


def check_inputs_batch(
    stays: Sequence[Stay], contract: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """:func:`check_inputs` for many windows at once (the same dicts), for the risk sweep: what
    each window had is measured over the whole batch in a few array passes, and only windows
    that may not be scored go through :func:`check_inputs` for their reasons."""
    contract = contract or FALLBACK_CONTRACT
    ranges: Mapping[str, Sequence[float]] = contract["ranges"]
    n = len(stays)
    sizes = np.array([len(s.times) for s in stays], dtype=np.int64)
    if n == 0 or not sizes.any():
        return [check_inputs(stay, contract) for stay in stays]
    owner = np.repeat(np.arange(n), sizes)
    times = np.concatenate([np.asarray(s.times, dtype=float) for s in stays])
    var = np.concatenate([np.asarray(s.var, dtype=np.int64) for s in stays])
    values = np.concatenate([np.asarray(s.values) for s in stays])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    filled = sizes > 0
    covered = np.zeros(n)
    covered[filled] = (
        np.maximum.reduceat(times, starts[filled]) - np.minimum.reduceat(times, starts[filled])
    ) / 60
    hour = np.floor(times / 60).astype(np.int64)
    hour_keys = np.unique(owner * (1 << 24) + (hour - hour.min()))  # (window, hour) pairs
    hours = np.bincount(hour_keys >> 24, minlength=n)
    counts = np.bincount(
        owner * len(TIME_SERIES_VARIABLES) + var, minlength=n * len(TIME_SERIES_VARIABLES)
    )
    present = counts.reshape(n, len(TIME_SERIES_VARIABLES))[:, _VITAL_VARS] > 0
    bad = np.zeros(n, dtype=bool)
    for ch, idx in zip(VITALS_TO_PHYSIONET.values(), _VITAL_VARS, strict=True):
        if ch in ranges:
            lo, hi = ranges[ch]
            out = (var == idx) & ((values < lo) | (values > hi))
            bad[owner[out]] = True
    ok = (hours >= contract["min_hours"]) & (present.sum(axis=1) >= contract["min_channels"])
    ok &= ~bad
    label = "recorded with the model" if contract is not FALLBACK_CONTRACT else "fallback"
    names = [LABELS[ch][0] for ch in VITALS_TO_PHYSIONET.values()]
    return [
        {
            "hours_covered": round(float(covered[i]), 1),
            "hours_with_data": int(hours[i]),
            "channels": [name for name, has in zip(names, present[i], strict=True) if has],
            "sufficient": True,
            "reason": "",
            "contract": label,
        }
        if ok[i]
        else check_inputs(stays[i], contract)
        for i in range(n)
    ]
