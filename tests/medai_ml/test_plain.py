"""JSON-safe plain values, and the pure package's promise: importing it (and the ml/ packages
that use it) loads no Django and nothing from medai_site."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medai_ml.plain import finite_list, finite_or_none, rounded, to_plain

ROOT = Path(__file__).resolve().parents[2]


def test_to_plain_gives_strict_json_for_numpy_and_non_finite_values():
    value = {
        1: (np.float32(0.5), np.int64(3), np.bool_(True)),
        "a": np.array([[1.0, np.nan], [np.inf, 2.0]]),
        "b": [float("nan"), np.float64(-np.inf), "text", None],
        "c": np.str_("label"),
    }
    plain = to_plain(value)
    assert plain == {
        "1": [0.5, 3, True],
        "a": [[1.0, None], [None, 2.0]],
        "b": [None, None, "text", None],
        "c": "label",
    }
    assert type(plain["1"][1]) is int and type(plain["1"][2]) is bool
    assert type(plain["c"]) is str
    json.dumps(plain, allow_nan=False)  # raises on NaN or infinity


def test_finite_and_rounded_numbers():
    assert finite_or_none(np.float64(1.5)) == 1.5
    assert finite_or_none(float("inf")) is None
    assert finite_list(np.array([1.0, np.nan])) == [1.0, None]
    with pytest.raises(ValueError):
        finite_or_none("not a number")
    assert rounded(np.float32(0.123456)) == 0.1235
    assert rounded(2.71828, 2) == 2.72
    assert rounded(np.nan) is None
    assert rounded("f") == "f"
    assert rounded(None) is None


@pytest.mark.parametrize(
    "module",
    ["medai_ml.plain", "diagnosis.ml.metrics", "treatment.ml.trials", "remote_care.ml.model"],
)
def test_the_pure_package_and_its_ml_users_import_no_django(module):
    code = (
        f"import sys, {module}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'medai_site'))\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""
