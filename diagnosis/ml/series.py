"""Series (multi-frame) aggregation of per-frame predictions made in one batched pass.

The implementation lives in `diagnosis.ml.predict` beside `predict_series`, which uses it, so
the two can never disagree; this module keeps the import path workers use.
"""

from __future__ import annotations

from diagnosis.ml.predict import aggregate_series

__all__ = ["aggregate_series"]
