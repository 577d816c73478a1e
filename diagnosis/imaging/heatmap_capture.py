"""The Grad-CAM heat-map as a DICOM Secondary Capture: an RGB overlay on the display frame, in
the same study as the scan, so that a PACS viewer shows it beside the original.

The colours follow the scan viewer's (static/js/viewer.js HEAT): transparent below 0.25 of the
heat-map's range, then red through orange to yellow, more opaque as the heat rises.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID

from diagnosis.imaging.pixels import Window, apply_window
from diagnosis.imaging.sr import InstanceRef, NewObject, StudyContext, common_modules, file_meta

SECONDARY_CAPTURE = UID("1.2.840.10008.5.1.4.1.1.7")
# (position, red, green, blue, opacity), as the viewer's colour scale.
HEAT_STOPS = np.array(
    [
        [0.0, 255, 0, 0, 0.0],
        [0.25, 255, 0, 0, 0.0],
        [0.5, 255, 40, 0, 0.55],
        [0.75, 255, 140, 0, 0.8],
        [1.0, 255, 255, 0, 0.95],
    ]
)
DEFAULT_OPACITY = 0.7


def display_grey(values: NDArray, *, center: float, width: float, invert: bool) -> NDArray:
    """The display frame windowed to [0, 1] (RGB frames keep their three channels)."""
    window = Window.from_range(center - width / 2, center + width / 2)
    unit = apply_window(values.astype(np.float32), window)
    return 1.0 - unit if invert else unit


def _resize_nearest(array: NDArray, shape: tuple[int, int]) -> NDArray:
    if array.shape[:2] == shape:
        return array
    rows = np.linspace(0, array.shape[0] - 1, shape[0]).round().astype(int)
    cols = np.linspace(0, array.shape[1] - 1, shape[1]).round().astype(int)
    return array[np.ix_(rows, cols)]


def overlay_rgb(
    unit: NDArray, heatmap: NDArray, *, opacity: float = DEFAULT_OPACITY
) -> NDArray[np.uint8]:
    """Blend ``heatmap`` (values in [0, 1], any size) over the display image ``unit`` ([0, 1],
    grey or RGB) with the viewer's colour scale; returns uint8 RGB of the image's size."""
    base = unit if unit.ndim == 3 else np.repeat(unit[..., None], 3, axis=2)
    heat = np.clip(_resize_nearest(np.nan_to_num(heatmap.astype(np.float32)), base.shape[:2]), 0, 1)
    colour = np.stack(
        [np.interp(heat, HEAT_STOPS[:, 0], HEAT_STOPS[:, c]) / 255.0 for c in (1, 2, 3)], axis=-1
    )
    alpha = (np.interp(heat, HEAT_STOPS[:, 0], HEAT_STOPS[:, 4]) * opacity)[..., None]
    blended = base * (1.0 - alpha) + colour * alpha
    return np.rint(np.clip(blended, 0, 1) * 255).astype(np.uint8)


def build_secondary_capture(
    *,
    rgb: NDArray[np.uint8],
    study: StudyContext,
    new: NewObject,
    sources: Sequence[InstanceRef] = (),
    description: str,
) -> Dataset:
    """A Secondary Capture Image (RGB, 8 bits, uncompressed) of ``rgb`` in ``study``, derived
    from ``sources`` (with its file meta)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError("the capture must be a uint8 RGB image (rows x columns x 3)")
    ds = Dataset()
    common_modules(ds, study=study, new=new, sop_class=SECONDARY_CAPTURE, modality="OT")
    ds.SeriesDescription = "MedAI heat-map"
    # General Series 2C: the capture's laterality is that of its source, which is not known here.
    ds.Laterality = ""
    ds.ConversionType = "SYN"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.PatientOrientation = ""
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    ds.DerivationDescription = description[:1024]
    if sources:
        refs = []
        for ref in sources:
            item = Dataset()
            item.ReferencedSOPClassUID = ref.sop_class_uid
            item.ReferencedSOPInstanceUID = ref.sop_instance_uid
            refs.append(item)
        ds.SourceImageSequence = DicomSequence(refs)
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = int(rgb.shape[0]), int(rgb.shape[1])
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(rgb).tobytes()
    file_meta(ds)
    return ds
