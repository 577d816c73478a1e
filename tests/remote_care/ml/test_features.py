from __future__ import annotations

import numpy as np

from remote_care.ml.features import ALL, FEATURES_PER_CHANNEL, VITALS, build_inputs, fit_normaliser
from remote_care.ml.physionet import Stay

K = len(FEATURES_PER_CHANNEL)


def _feat(x, spec, channel, name):
    ci = [c.name for c in spec.channels].index(channel)
    return x[:, ci * K + FEATURES_PER_CHANNEL.index(name)]


def test_shapes_and_mask_on_a_real_stay(stays_700, by_id):
    norm = fit_normaliser(stays_700[:300], ALL)
    x, s = build_inputs(by_id[132539], ALL, norm)
    assert x.shape == (48, ALL.n_features) and s.shape == (ALL.n_static,)
    assert np.isfinite(x).all()
    # HR charted at 00:07, 00:37 (hour 0) and 01:37 (hour 1).
    mask = _feat(x, ALL, "HR", "mask")
    assert mask[0] == 1 and mask[1] == 1
    # Never-measured channel: fully masked, delta at its maximum, value at the mean (0).
    assert _feat(x, ALL, "Cholesterol", "seen").sum() == 0
    assert (_feat(x, ALL, "Cholesterol", "delta") == 1).all()
    # Running max never decreases and is at least the current value once seen.
    rmax = _feat(x, ALL, "HR", "max")
    assert (np.diff(rmax) >= -1e-6).all()


def test_features_are_causal(by_id, stays_700):
    """Adding an observation at hour 30 changes nothing before hour 30."""
    norm = fit_normaliser(stays_700[:300], ALL)
    base = by_id[132539]
    hr = ALL.channels.index(next(c for c in ALL.channels if c.name == "HR"))
    extra = Stay(
        base.record_id,
        base.static,
        np.append(base.times, np.float32(30 * 60 + 5)),
        np.append(base.var, np.int16(hr)),
        np.append(base.values, np.float32(180)),
    )
    order = np.argsort(extra.times, kind="stable")
    extra = Stay(
        extra.record_id, extra.static, extra.times[order], extra.var[order], extra.values[order]
    )
    x0, _ = build_inputs(base, ALL, norm)
    x1, _ = build_inputs(extra, ALL, norm)
    np.testing.assert_array_equal(x0[:30], x1[:30])
    assert not np.array_equal(x0[30], x1[30])


def test_vitals_spec_merges_pressures_and_flags_oxygen(by_id, stays_700):
    norm = fit_normaliser(stays_700[:300], VITALS)
    x, s = build_inputs(by_id[132540], VITALS, norm)
    assert x.shape == (48, VITALS.n_features) and s.shape == (4,)
    # Invasive SysABP (only pressure this stay has) feeds the systolic channel from hour 1.
    assert _feat(x, VITALS, "systolic_bp", "mask")[1] == 1
    # MechVent at 01:11 -> supplemental-oxygen indicator 1.
    assert _feat(x, VITALS, "on_oxygen", "last")[1] == 1
