"""Turn decoded stored values into frames for display (uint8) and for the model (float 0..1).

Grey-scale DICOM follows the PS3.4 Annex N / PS3.3 C.11 pipeline: stored values -> Modality
LUT (rescale or LUT) -> VOI LUT (window or LUT) -> Presentation (MONOCHROME1 inverted).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut

from diagnosis.imaging.errors import RejectCode, ScanRejected
from diagnosis.imaging.scan import LoadedScan

VoiFunction = Literal["LINEAR", "LINEAR_EXACT", "SIGMOID"]
WindowSource = Literal["header", "voi_lut", "percentile", "full_range"]

# Percentiles for a default window when the header has none: wide enough to keep anatomy,
# narrow enough that a few saturated or padding pixels do not flatten the contrast.
DEFAULT_PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True)
class Window:
    """A VOI window (PS3.3 C.11.2.1.2): centre and width in Modality LUT output units."""

    center: float
    width: float
    function: VoiFunction = "LINEAR"

    def __post_init__(self) -> None:
        # C.11.2.1.2.1: LINEAR needs width >= 1; C.11.2.1.3: the others need width > 0.
        minimum_ok = self.width >= 1 if self.function == "LINEAR" else self.width > 0
        if not (np.isfinite(self.center) and np.isfinite(self.width) and minimum_ok):
            raise ValueError(
                f"invalid {self.function} window: centre {self.center}, width {self.width}"
            )

    @classmethod
    def from_range(cls, low: float, high: float) -> Window:
        """Return the LINEAR_EXACT window mapping `low` to black and `high` to white."""
        width = max(float(high) - float(low), 1e-6)
        return cls(center=(float(low) + float(high)) / 2.0, width=width, function="LINEAR_EXACT")

    @property
    def bounds(self) -> tuple[float, float]:
        """Return the (lowest, highest) input values the window spreads over."""
        return self.center - self.width / 2.0, self.center + self.width / 2.0


@dataclass(frozen=True)
class VoiLut:
    """A VOI LUT (PS3.3 C.11.2.1.1): table[i] is the output for input first_mapped + i."""

    first_mapped: float
    table: NDArray[np.float64]


@dataclass(frozen=True)
class Frame:
    """One frame: grey values after the Modality LUT, or RGB samples, plus how to show them."""

    # float32; (rows, cols) in modality units (e.g. HU) or (rows, cols, 3) RGB samples.
    values: NDArray[np.float32]
    is_color: bool
    # MONOCHROME1: low values are white (PS3.3 C.7.6.3.1.2), so display inverts after VOI.
    invert: bool
    # The default window a viewer starts from; for colour frames, the full sample range.
    window: Window
    window_source: WindowSource
    # The header's VOI LUT, applied by default when the header gives no window.
    voi_lut: VoiLut | None = None


@dataclass(frozen=True)
class FramePresentation:
    """Parsed per-frame attributes: how to map stored values of one frame."""

    slope: float
    intercept: float
    use_modality_lut_sequence: bool
    window: Window | None
    voi_lut: VoiLut | None


def apply_window(values: ArrayLike, window: Window) -> NDArray[np.float32]:
    """Map values through a window to [0, 1] using the PS3.3 C.11.2.1.2/3 VOI functions."""
    x = np.asarray(values, dtype=np.float64)
    c, w = window.center, window.width
    if window.function == "SIGMOID":
        # C.11.2.1.3.1: y = 1 / (1 + exp(-4 (x - c) / w)).
        out = 1.0 / (1.0 + np.exp(np.clip(-4.0 * (x - c) / w, -700, 700)))
    elif window.function == "LINEAR_EXACT":
        # C.11.2.1.3.2: linear from c - w/2 to c + w/2.
        out = (x - c) / w + 0.5
    else:
        # C.11.2.1.2.1: the half-pixel-offset linear ramp; width 1 is a hard threshold.
        if w <= 1:
            out = (x > c - 0.5).astype(np.float64)
        else:
            out = (x - (c - 0.5)) / (w - 1) + 0.5
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def apply_voi_lut(values: ArrayLike, lut: VoiLut) -> NDArray[np.float32]:
    """Map values through a VOI LUT to [0, 1]; inputs outside the table clamp to its ends."""
    x = np.asarray(values, dtype=np.float64)
    # C.11.2.1.1: below the first entry use the first output, above the last use the last.
    index = np.clip(np.rint(x - lut.first_mapped), 0, len(lut.table) - 1).astype(np.intp)
    out = lut.table[index]
    low, high = float(lut.table.min()), float(lut.table.max())
    # Normalise by the table's own output range: some vendors declare 16 output bits but fill
    # only 12, and a VOI LUT is meant to span the display range.
    return ((out - low) / max(high - low, 1e-12)).astype(np.float32)


def to_unit_range(frame: Frame, window: Window | None = None) -> NDArray[np.float32]:
    """Return the frame as display intensities in [0, 1], using `window` or the default VOI."""
    if frame.is_color:
        return apply_window(frame.values, window or frame.window)
    if window is None and frame.window_source == "voi_lut" and frame.voi_lut is not None:
        unit = apply_voi_lut(frame.values, frame.voi_lut)
    else:
        unit = apply_window(frame.values, window or frame.window)
    # PS3.3 C.8.11.1.1.1 (and C.7.6.3.1.2): MONOCHROME1 is shown inverted after VOI.
    return (1.0 - unit).astype(np.float32) if frame.invert else unit


def to_uint8(frame: Frame, window: Window | None = None) -> NDArray[np.uint8]:
    """Return the frame as 8-bit display pixels, using `window` (user's choice) or the default."""
    return np.rint(to_unit_range(frame, window) * 255.0).astype(np.uint8)


def model_input(frame: Frame) -> NDArray[np.float32]:
    """Return the model's float32 [0, 1] input: default VOI applied, MONOCHROME1 inverted."""
    return to_unit_range(frame)


def percentile_window(
    values: ArrayLike,
    *,
    mask: NDArray[np.bool_] | None = None,
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
) -> Window:
    """Return a LINEAR_EXACT window spanning the given percentiles of the (masked) values."""
    data = np.asarray(values, dtype=np.float64)
    if mask is not None and mask.any():
        data = data[mask]
    data = data[np.isfinite(data)]
    if data.size == 0:
        return Window.from_range(0.0, 1.0)
    low, high = np.percentile(data, percentiles)
    if high <= low:
        low, high = float(data.min()), float(data.max())
    if high <= low:
        high = low + 1.0  # a constant image: show it mid-grey rather than divide by zero
    return Window.from_range(float(low), float(high))


class ScanFrames(Sequence[Frame]):
    """The frames of an accepted upload, each built when it is read: a long or large series
    never holds more than one frame's float values at a time (the stored values stay in their
    native integer type until then)."""

    def __init__(self, scan: LoadedScan) -> None:
        self._scan = scan
        self._count = int(scan.pixels.shape[0])
        self._build: Callable[[int], Frame]
        if scan.dataset is None:
            self._build = lambda index: _raster_frame(scan, index)
            return
        presentations = frame_presentations(scan)
        photometric = scan.decoded_photometric.upper()
        if photometric == "PALETTE COLOR":
            self._build = lambda index: _palette_frame(scan, index)
        elif scan.pixels.ndim == 4:
            full = Window.from_range(0.0, float(2 ** int(scan.info.bits_stored) - 1))
            self._build = lambda index: Frame(
                scan.pixels[index].astype(np.float32), True, False, full, "full_range"
            )
        else:
            self._build = lambda index: _grey_dicom_frame(scan, index, presentations[index])

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Frame: ...

    @overload
    def __getitem__(self, index: slice) -> list[Frame]: ...

    def __getitem__(self, index: int | slice) -> Frame | list[Frame]:
        if isinstance(index, slice):
            return [self._build(i) for i in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(index)
        return self._build(index)


def scan_frames(scan: LoadedScan) -> ScanFrames:
    """Every frame of an accepted upload, with its default presentation, built on access
    (ScanRejected for unusable per-frame attributes is raised here, before any frame)."""
    return ScanFrames(scan)


def frame_presentations(scan: LoadedScan) -> list[FramePresentation]:
    """Parse each frame's Modality and VOI LUT attributes; reject ones that are unusable."""
    dataset = scan.dataset
    if dataset is None:
        return []
    frames = scan.pixels.shape[0] if scan.pixels.size else scan.info.frames
    shared = _first_item(dataset, "SharedFunctionalGroupsSequence")
    per_frame = _items(dataset, "PerFrameFunctionalGroupsSequence")
    top_window = _window_from(dataset)
    top_lut = _voi_lut_from(dataset)
    result: list[FramePresentation] = []
    for index in range(frames):
        # PS3.3 C.7.6.16: a per-frame functional group overrides the shared one, which
        # overrides the classic top-level attributes.
        own = per_frame[index] if index < len(per_frame) else None
        groups = [group for group in (own, shared) if group is not None]
        transform = _macro(groups, "PixelValueTransformationSequence")
        voi = _macro(groups, "FrameVOILUTSequence")
        slope, intercept = _rescale(transform if transform is not None else dataset)
        result.append(
            FramePresentation(
                slope=slope,
                intercept=intercept,
                use_modality_lut_sequence=transform is None and "ModalityLUTSequence" in dataset,
                window=_window_from(voi) if voi is not None else top_window,
                voi_lut=top_lut,
            )
        )
    return result


# --- DICOM helpers -------------------------------------------------------------------------


def _items(dataset: Dataset, keyword: str) -> Sequence[Dataset]:
    """Return a sequence's items, or an empty list."""
    value = dataset.get(keyword)
    return list(value) if value else []


def _first_item(dataset: Dataset, keyword: str) -> Dataset | None:
    """Return a sequence's first item, or None."""
    items = _items(dataset, keyword)
    return items[0] if items else None


def _macro(groups: Sequence[Dataset], keyword: str) -> Dataset | None:
    """Return the first functional-group macro item named `keyword` in priority order."""
    for group in groups:
        item = _first_item(group, keyword)
        if item is not None:
            return item
    return None


def _first_number(value: Any) -> float | None:
    """Return the first value of a DS/IS attribute as float, None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, MultiValue | list | tuple):
        if not value:
            return None
        # PS3.3 C.11.2.1.2: several centre/width pairs are alternatives; the first is default.
        value = value[0]
    return float(value)


def _rescale(source: Dataset) -> tuple[float, float]:
    """Return (slope, intercept) per PS3.3 C.11.1.1.2, rejecting unreadable values."""
    try:
        slope = _first_number(source.get("RescaleSlope"))
        intercept = _first_number(source.get("RescaleIntercept"))
    except (TypeError, ValueError) as exc:
        raise ScanRejected(
            RejectCode.INVALID_ATTRIBUTE,
            "The DICOM Rescale Slope (0028,1053) or Rescale Intercept (0028,1052) is not a "
            "number, so the pixel values cannot be converted to their real units.",
            detail=repr(exc),
        ) from exc
    slope = 1.0 if slope is None else slope
    if slope == 0 or not np.isfinite(slope):
        raise ScanRejected(
            RejectCode.INVALID_ATTRIBUTE,
            "The DICOM Rescale Slope (0028,1053) is zero or not finite, so the pixel values "
            "cannot be converted to their real units.",
        )
    return slope, 0.0 if intercept is None else intercept


def _window_from(source: Dataset) -> Window | None:
    """Return the first header window, or None when absent or unusable (then computed)."""
    try:
        center = _first_number(source.get("WindowCenter"))
        width = _first_number(source.get("WindowWidth"))
        function = str(source.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
        if center is None or width is None:
            return None
        if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
            function = "LINEAR"  # C.11.2.1.3: unknown functions fall back to the default
        return Window(center, width, function)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        # A damaged window is a presentation hint, not image data: use a computed one.
        return None


def _voi_lut_from(dataset: Dataset) -> VoiLut | None:
    """Return the first VOI LUT Sequence item as a VoiLut, or None when absent or unusable."""
    item = _first_item(dataset, "VOILUTSequence")
    if item is None:
        return None
    try:
        descriptor = [int(value) for value in item.LUTDescriptor]
        raw = item.LUTData
        if isinstance(raw, bytes | bytearray):
            # C.11.2.1.1: LUT Data entries are 16-bit words whatever the output depth.
            table = np.frombuffer(raw, dtype="<u2").astype(np.float64)
        else:
            table = np.asarray(raw if isinstance(raw, MultiValue | list) else [raw], np.float64)
        entries = descriptor[0] or 65536  # C.11.2.1.1: 0 means 2^16 entries
        first = descriptor[1]
        if int(dataset.get("PixelRepresentation", 0) or 0) == 1 and first >= 2**15:
            first -= 2**16  # first mapped value is signed for signed pixel data
        table = table[:entries]
        if table.size == 0:
            return None
        return VoiLut(first_mapped=float(first), table=table)
    except (AttributeError, TypeError, ValueError, IndexError):
        return None


def _padding_mask(dataset: Dataset, stored: NDArray[Any]) -> NDArray[np.bool_] | None:
    """Return True where pixels are real, False on PS3.3 C.7.5.1.1.2 padding values."""
    padding = dataset.get("PixelPaddingValue")
    if padding is None:
        return None
    try:
        low = int(padding)
        limit = dataset.get("PixelPaddingRangeLimit")
        high = int(limit) if limit is not None else low
    except (TypeError, ValueError):
        return None
    low, high = min(low, high), max(low, high)
    return ~((stored >= low) & (stored <= high))


def _grey_dicom_frame(scan: LoadedScan, index: int, presentation: FramePresentation) -> Frame:
    """Apply the Modality LUT to one grey frame and choose its default VOI."""
    dataset = scan.dataset
    assert dataset is not None  # only called for DICOM scans
    stored = scan.pixels[index]
    if presentation.use_modality_lut_sequence:
        # C.11.1: a Modality LUT Sequence replaces rescale; pydicom applies the table.
        values = np.asarray(apply_modality_lut(stored, dataset), dtype=np.float32)
    else:
        values = (stored.astype(np.float64) * presentation.slope + presentation.intercept).astype(
            np.float32
        )
    invert = scan.info.photometric_interpretation.upper() == "MONOCHROME1"
    if presentation.window is not None:
        return Frame(values, False, invert, presentation.window, "header", presentation.voi_lut)
    lut = presentation.voi_lut
    if lut is not None:
        window = Window.from_range(lut.first_mapped, lut.first_mapped + len(lut.table) - 1)
        return Frame(values, False, invert, window, "voi_lut", lut)
    window = percentile_window(values, mask=_padding_mask(dataset, stored))
    return Frame(values, False, invert, window, "percentile")


def _palette_frame(scan: LoadedScan, index: int) -> Frame:
    """Expand a PALETTE COLOR frame through its LUT (PS3.3 C.7.6.3.1.5) to RGB."""
    dataset = scan.dataset
    assert dataset is not None  # only called for DICOM scans
    try:
        rgb = apply_color_lut(scan.pixels[index], dataset)
    except Exception as exc:  # pydicom raises several types for malformed palettes
        raise ScanRejected(
            RejectCode.INVALID_ATTRIBUTE,
            "The image's colour palette (Palette Color Lookup Tables, 0028,1101-1203) is "
            "damaged, so its colours cannot be shown.",
            detail=repr(exc),
        ) from exc
    top = float(rgb.max()) if rgb.size else 0.0
    # C.7.6.3.1.6: some writers store 8-bit entries in 16-bit tables; judge by the values.
    full_scale = 255.0 if rgb.dtype == np.uint8 or top <= 255 else 65535.0
    return Frame(
        rgb.astype(np.float32), True, False, Window.from_range(0.0, full_scale), "full_range"
    )


def _raster_frame(scan: LoadedScan, index: int) -> Frame:
    """Build a frame for a PNG/JPEG: 8-bit shown as stored, deeper grey windowed by percentile."""
    stored = scan.pixels[index]
    values = stored.astype(np.float32)
    is_color = stored.ndim == 3
    if scan.info.bits_allocated == 8:
        return Frame(values, is_color, False, Window.from_range(0.0, 255.0), "full_range")
    return Frame(values, is_color, False, percentile_window(values), "percentile")
