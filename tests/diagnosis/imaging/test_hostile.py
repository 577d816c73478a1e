"""The pure intake against deep nesting, and its pre-decode hook (no database)."""

from __future__ import annotations

import pytest

from diagnosis.imaging import ScanRejected, load_upload
from diagnosis.imaging.dicom_intake import MAX_SEQUENCE_DEPTH
from tests import hostile_files as hostile

LIMITS = {"max_bytes": 64 * 1024 * 1024, "max_pixels": 50_000_000}


def test_nesting_up_to_the_bound_is_read():
    scan = load_upload(hostile.dicom_deep_sequences(MAX_SEQUENCE_DEPTH), **LIMITS)
    assert scan.info.rows == 8


@pytest.mark.parametrize("depth", [MAX_SEQUENCE_DEPTH + 1, 3000])
def test_deeper_nesting_is_refused_with_a_message_not_a_recursion_error(depth):
    with pytest.raises(ScanRejected, match="nests sequences more than 32 levels"):
        load_upload(hostile.dicom_deep_sequences(depth), **LIMITS)


class Stop(Exception):
    pass


@pytest.mark.parametrize(
    ("make", "samples"),
    [
        (lambda: hostile.png((300, 200)), 300 * 200),
        (lambda: hostile.jpeg((40, 30)), 40 * 30 * 3),
        (lambda: hostile.dicom(Rows=16, Columns=8, PixelData=bytes(128)), 128),
    ],
)
def test_the_declared_size_is_reported_before_decoding_and_can_stop_it(make, samples):
    seen = []

    def budget(count: int) -> None:
        seen.append(count)
        raise Stop

    with pytest.raises(Stop):
        load_upload(make(), on_declared=budget, **LIMITS)
    assert seen == [samples]
