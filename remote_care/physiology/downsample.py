"""Shape-preserving down-sampling of long vital-sign series for charts.

Three methods, each returning a subset of the input points (never interpolated values, so every
plotted point was really measured) plus NaN separators where the data has gaps:

* ``lttb``: Largest-Triangle-Three-Buckets (S. Steinarsson, "Downsampling time series for visual
  representation", MSc thesis, University of Iceland, 2013): equal-count buckets, one point per
  bucket, chosen to maximise the triangle formed with the previously chosen point and the mean of
  the next bucket. Keeps the visual shape; does not promise to keep every extreme.
* ``minmaxlttb``: MinMaxLTTB (Van Der Donckt et al., "MinMaxLTTB: Leveraging MinMax-Preselection
  to Scale LTTB", IEEE VIS 2023): the minimum and maximum of 4 x n_out equal-time bins are
  pre-selected, then LTTB runs on those. LTTB's look at a fraction of its cost on long series; the
  chart's default.
* ``minmax``: the minimum and the maximum of each equal-time bucket (as in the M4 aggregation,
  Jugel et al., VLDB 2014, less first/last per bucket). Guarantees that the global minimum and
  maximum survive, which is what a clinician scanning 30 days of SpO2 for a desaturation needs.

Gaps: a NaN value, or (with ``max_gap``) a jump in time larger than ``max_gap``, splits the series
into segments, unless the gap is narrower than ``min_gap`` (default: one output point's share of
the time span, since a narrower break could not be drawn faithfully and would only chop the
line). Segments are down-sampled separately so that no line is drawn across a gap, and a single
NaN point is placed between consecutive segments (charting libraries draw NaN/null as a break).
Each segment keeps its first and last point. If there are more segments than the output can
hold, the segments separated by the shortest gaps are joined first.

Timestamps may be irregular (and numeric or ``datetime64``); they are sorted (stably) if needed.
The per-segment selection is tsdownsample's (compiled, maintained; its LTTB matches the textbook
listing exactly, see the tests); gaps, budgets and separators are handled here, in numpy. Nothing
here imports Django.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from tsdownsample import LTTBDownsampler, MinMaxDownsampler, MinMaxLTTBDownsampler

__all__ = ["METHODS", "Downsampled", "downsample", "lttb", "minmax", "minmaxlttb"]


@dataclass(frozen=True)
class Downsampled:
    """Down-sampled series: ``x`` keeps the input's dtype; ``y`` is NaN at gap separators."""

    x: NDArray[Any]
    y: NDArray[np.float64]
    method: str
    n_in: int

    def __len__(self) -> int:
        return int(self.y.size)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: datetimes as ISO 8601 strings, gaps as None."""
        if np.issubdtype(self.x.dtype, np.datetime64):
            xs: list[Any] = np.datetime_as_string(self.x).tolist()
        else:
            xs = self.x.tolist()
        ys = [None if math.isnan(v) else v for v in self.y.tolist()]
        return {"method": self.method, "n_in": self.n_in, "x": xs, "y": ys}


# Fewest points a segment keeps when it has that many: LTTB needs its two ends; min/max needs
# its two ends plus one bucket's min and max, so the global extremes are always kept.
_MIN_PER_SEGMENT = {"lttb": 2, "minmaxlttb": 2, "minmax": 4}
METHODS = tuple(_MIN_PER_SEGMENT)


def lttb(
    x: ArrayLike,
    y: ArrayLike,
    n_out: int,
    *,
    max_gap: float | np.timedelta64 | None = None,
    min_gap: float | np.timedelta64 | None = None,
) -> Downsampled:
    """Largest-Triangle-Three-Buckets down-sampling to at most ``n_out`` points (gap separators
    included), keeping each segment's first and last point."""
    return downsample(x, y, n_out, method="lttb", max_gap=max_gap, min_gap=min_gap)


def minmaxlttb(
    x: ArrayLike,
    y: ArrayLike,
    n_out: int,
    *,
    max_gap: float | np.timedelta64 | None = None,
    min_gap: float | np.timedelta64 | None = None,
) -> Downsampled:
    """MinMaxLTTB down-sampling to at most ``n_out`` points (gap separators included), keeping
    each segment's first and last point: LTTB's shape at a fraction of its cost."""
    return downsample(x, y, n_out, method="minmaxlttb", max_gap=max_gap, min_gap=min_gap)


def minmax(
    x: ArrayLike,
    y: ArrayLike,
    n_out: int,
    *,
    max_gap: float | np.timedelta64 | None = None,
    min_gap: float | np.timedelta64 | None = None,
) -> Downsampled:
    """Min/max-per-time-bucket down-sampling to at most ``n_out`` points (gap separators
    included), keeping each segment's first and last point and the global min and max."""
    return downsample(x, y, n_out, method="minmax", max_gap=max_gap, min_gap=min_gap)


def downsample(
    x: ArrayLike,
    y: ArrayLike,
    n_out: int,
    *,
    method: str = "lttb",
    max_gap: float | np.timedelta64 | None = None,
    min_gap: float | np.timedelta64 | None = None,
) -> Downsampled:
    """Down-sample (x, y) to at most ``n_out`` points with ``method`` 'lttb' or 'minmax'; NaN y
    values and time jumps over ``max_gap`` become gaps, except gaps narrower than ``min_gap``
    (default: the time span / n_out, i.e. under one output point) which are joined; pass 0 to
    keep every gap. Points with a missing x are dropped."""
    if method not in _MIN_PER_SEGMENT:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    floor = _MIN_PER_SEGMENT[method]
    if not isinstance(n_out, int | np.integer) or n_out < floor:
        raise ValueError(f"n_out must be an integer >= {floor} for {method}")
    xa = np.asarray(x)
    ya = np.asarray(y, dtype=np.float64)
    if xa.ndim != 1 or xa.shape != ya.shape:
        raise ValueError("x and y must be one-dimensional and of equal length")
    n_in = int(ya.size)
    is_time = np.issubdtype(xa.dtype, np.datetime64)
    if not (is_time or np.issubdtype(xa.dtype, np.number)):
        raise TypeError("x must be numeric or datetime64")

    # Timeline as float64 offsets from the first timestamp: datetime64 is subtracted in int64
    # first, so nanosecond timestamps do not lose precision in the float conversion.
    if is_time:
        valid_x = ~np.isnat(xa)
        xi = xa.view(np.int64)
        t0 = xi[valid_x][0] if valid_x.any() else 0
        t = (xi - t0).astype(np.float64)
    else:
        t = xa.astype(np.float64)
        valid_x = np.isfinite(t)
    if not valid_x.all():
        xa, ya, t = xa[valid_x], ya[valid_x], t[valid_x]
    if t.size > 1 and np.any(t[1:] < t[:-1]):
        order = np.argsort(t, kind="stable")
        xa, ya, t = xa[order], ya[order], t[order]

    time_dtype = xa.dtype if is_time else None
    gap = _gap_in_timeline_units(max_gap, time_dtype)
    finite = np.flatnonzero(np.isfinite(ya))
    if finite.size == 0:
        return Downsampled(xa[:0], ya[:0], method, n_in)
    # A break sits after finite point i when the next finite point is not adjacent (NaNs lie
    # between) or lies more than max_gap later.
    breaks = np.diff(finite) > 1
    if gap is not None:
        breaks |= np.diff(t[finite]) > gap
    brk = np.flatnonzero(breaks)
    widths = t[finite[brk + 1]] - t[finite[brk]]
    # A gap narrower than one output point cannot be drawn faithfully; a break there would only
    # chop the line (e.g. one dropped sample in 30 days), so such gaps are joined by default.
    span = float(t[finite[-1]] - t[finite[0]])
    join_below = span / n_out if min_gap is None else _gap_in_timeline_units(min_gap, time_dtype)
    if join_below:
        keep = widths >= join_below
        brk, widths = brk[keep], widths[keep]
    # Too many segments for the budget: keep only the widest gaps as breaks.
    max_segments = (n_out + 1) // (floor + 1)
    if brk.size + 1 > max_segments:
        widest = np.argsort(-widths, kind="stable")[: max_segments - 1]
        brk = np.sort(brk[widest])
    bounds = np.concatenate([[0], brk + 1, [finite.size]])
    sizes = np.diff(bounds)
    budget = _allocate(sizes, n_out - (sizes.size - 1), floor)

    pieces_idx: list[NDArray[np.int64]] = []
    for s, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        seg = finite[a:b]
        m = int(budget[s])
        if m >= seg.size:
            chosen = np.arange(seg.size)
        elif method == "lttb":
            chosen = _lttb_indices(t[seg], ya[seg], m)
        elif method == "minmaxlttb":
            chosen = _minmaxlttb_indices(t[seg], ya[seg], m)
        else:
            chosen = _minmax_indices(t[seg], ya[seg], m)
        pieces_idx.append(seg[chosen])

    # Assemble, with one NaN separator between segments at the midpoint of the gap.
    xs: list[NDArray[Any]] = []
    ys: list[NDArray[np.float64]] = []
    for s, idx in enumerate(pieces_idx):
        if s:
            left, right = pieces_idx[s - 1][-1], idx[0]
            xs.append(_midpoint(xa, left, right))
            ys.append(np.array([np.nan]))
        xs.append(xa[idx])
        ys.append(ya[idx])
    return Downsampled(np.concatenate(xs), np.concatenate(ys), method, n_in)


def _gap_in_timeline_units(
    max_gap: float | np.timedelta64 | None, time_dtype: np.dtype[Any] | None
) -> float | None:
    """A gap width in the units of the float timeline (x units, or the datetime64 unit)."""
    if max_gap is None:
        return None
    if time_dtype is not None:
        unit = np.datetime_data(time_dtype)[0]
        if isinstance(max_gap, np.timedelta64):
            return float(max_gap / np.timedelta64(1, unit))
        raise TypeError("with datetime64 x, max_gap must be a numpy timedelta64")
    if isinstance(max_gap, np.timedelta64) or not float(max_gap) >= 0:
        raise ValueError("gap widths must be non-negative numbers in x units")
    return float(max_gap)


def _midpoint(xa: NDArray[Any], i: int, j: int) -> NDArray[Any]:
    if np.issubdtype(xa.dtype, np.datetime64):
        a = xa[i : i + 1].view(np.int64)
        b = xa[j : j + 1].view(np.int64)
        return (a + (b - a) // 2).view(xa.dtype)
    if np.issubdtype(xa.dtype, np.integer):
        return xa[i : i + 1] + (xa[j : j + 1] - xa[i : i + 1]) // 2
    return xa[i : i + 1] + (xa[j : j + 1] - xa[i : i + 1]) / 2


def _allocate(sizes: NDArray[np.int64], total: int, floor: int) -> NDArray[np.int64]:
    """Split ``total`` output points over segments: each gets min(size, floor), the rest is
    shared in proportion to the points each has left (floored, so the sum never exceeds)."""
    base = np.minimum(sizes, floor)
    spare = total - int(base.sum())
    extra = sizes - base
    if spare <= 0 or extra.sum() == 0:
        return base
    share = np.floor(spare * extra / extra.sum()).astype(np.int64)
    return np.minimum(base + share, sizes)


def _lttb_indices(t: NDArray[np.float64], y: NDArray[np.float64], m: int) -> NDArray[np.int64]:
    """Indices LTTB keeps from one gap-free segment of n > m >= 2 points (tsdownsample's
    LTTBDownsampler: the textbook algorithm, first and last point fixed)."""
    if m == 2:
        return np.array([0, t.size - 1], dtype=np.int64)
    return np.asarray(LTTBDownsampler().downsample(t, y, n_out=m), dtype=np.int64)


def _minmaxlttb_indices(
    t: NDArray[np.float64], y: NDArray[np.float64], m: int
) -> NDArray[np.int64]:
    """Indices MinMaxLTTB keeps from one gap-free segment of n > m >= 2 points: the minimum and
    maximum of 4 x m equal-time bins are pre-selected, then LTTB picks m of them
    (tsdownsample's MinMaxLTTBDownsampler; Van Der Donckt et al., IEEE VIS 2023). Same look
    as LTTB, a fraction of its cost on long series."""
    if m == 2:
        return np.array([0, t.size - 1], dtype=np.int64)
    if not t[-1] > t[0]:
        # All timestamps equal: equal-time bins are undefined (the library would fail); the
        # index stands in for time, as LTTB's equal-count buckets do.
        return np.asarray(MinMaxLTTBDownsampler().downsample(y, n_out=m), dtype=np.int64)
    return np.asarray(MinMaxLTTBDownsampler().downsample(t, y, n_out=m), dtype=np.int64)


def _minmax_indices(t: NDArray[np.float64], y: NDArray[np.float64], m: int) -> NDArray[np.int64]:
    """Indices of first, last, and the min and max of each of (m - 2) // 2 equal-time buckets
    over the interior of one gap-free segment of n > m >= 4 points (tsdownsample's
    MinMaxDownsampler bins by x, so each bucket is an equal slice of time)."""
    n = t.size
    n_buckets = (m - 2) // 2
    if n_buckets == 1:
        # One bucket (the library bins need at least two): the interior's own min and max.
        inner = np.array([np.argmin(y[1 : n - 1]), np.argmax(y[1 : n - 1])], dtype=np.int64)
    elif t[n - 1] > t[0]:
        inner = np.asarray(
            MinMaxDownsampler().downsample(t[1 : n - 1], y[1 : n - 1], n_out=2 * n_buckets),
            dtype=np.int64,
        )
    else:
        # All timestamps equal: equal-time bins are undefined; use equal-count bins.
        inner = np.asarray(
            MinMaxDownsampler().downsample(y[1 : n - 1], n_out=2 * n_buckets), dtype=np.int64
        )
    return np.unique(np.concatenate([[0, n - 1], inner + 1])).astype(np.int64)
