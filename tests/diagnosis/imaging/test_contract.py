"""The metadata gate: a scan whose header says it is not what the model reads is refused with a
reason a clinician can read; a chest radiograph (even one with sparse metadata) passes."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest

from diagnosis.imaging.contract import (
    MEDMNIST_CONTRACTS,
    InputContract,
    contract_check,
    contract_for_dataset,
)
from diagnosis.imaging.intake import load_upload
from diagnosis.imaging.scan import LoadedScan
from tests.diagnosis.imaging.imaging_samples import (
    MAX_BYTES,
    MAX_PIXELS,
    NEMA_DIR,
    png_bytes,
    pydicom_file_bytes,
)

CHEST = MEDMNIST_CONTRACTS["pneumoniamnist"]


def _load(data: bytes) -> LoadedScan:
    return load_upload(data, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)


def _nema(name: str) -> LoadedScan:
    path = NEMA_DIR / name
    if not path.is_file():
        pytest.skip(f"NEMA WG-04 file {name} is not mounted")
    return _load(path.read_bytes())


@pytest.fixture(scope="module")
def chest_cr() -> LoadedScan:
    # pydicom-data's RG1: a real PA chest CR (MONOCHROME1, BodyPartExamined CHEST).
    return _load(pydicom_file_bytes("RG1_UNCR.dcm"))


def _check(scan: LoadedScan, **changes: object) -> object:
    dataset = copy.deepcopy(scan.dataset)
    for keyword, value in changes.items():
        if value is None:
            if keyword in dataset:
                delattr(dataset, keyword)
        else:
            setattr(dataset, keyword, value)
    return contract_check(CHEST, info=scan.info, dataset=dataset)


def test_chest_cr_passes(chest_cr: LoadedScan) -> None:
    result = contract_check(CHEST, info=chest_cr.info, dataset=chest_cr.dataset)
    assert result.fits, result.reason


def test_ct_is_refused_with_the_reason() -> None:
    scan = _nema("CT1_UNC")
    result = contract_check(CHEST, info=scan.info, dataset=scan.dataset)
    assert not result.fits
    assert result.reason.startswith(
        "not scored: this model reads chest radiographs (CR/DX, chest); this is a CT"
    )
    assert "modality CT" in result.problems


@pytest.mark.parametrize(
    ("name", "words"), [("MR1_UNC", "an MR image"), ("US1_UNC", "an ultrasound image")]
)
def test_other_modalities_are_refused(name: str, words: str) -> None:
    scan = _nema(name)
    result = contract_check(CHEST, info=scan.info, dataset=scan.dataset)
    assert not result.fits
    assert f"this is {words}" in result.reason


def test_ct_of_the_head_is_named(chest_cr: LoadedScan) -> None:
    result = _check(chest_cr, Modality="CT", BodyPartExamined="HEAD")
    assert not result.fits
    assert result.reason.startswith(
        "not scored: this model reads chest radiographs (CR/DX, chest); this is a CT of the head"
    )


def test_missing_body_part_and_view_on_a_cr_is_not_a_refusal(chest_cr: LoadedScan) -> None:
    assert _check(chest_cr, BodyPartExamined=None, ViewPosition=None).fits
    # Vendors' synonyms for the chest are the chest.
    assert _check(chest_cr, BodyPartExamined="THORAX").fits


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"BodyPartExamined": "HAND"}, "body part HAND"),
        ({"ViewPosition": "LL"}, "view LL"),
        ({"ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]}, "image type LOCALIZER"),
        ({"Modality": "MG"}, "modality MG"),
    ],
)
def test_a_stated_mismatch_is_a_refusal(
    chest_cr: LoadedScan, changes: dict[str, object], problem: str
) -> None:
    result = _check(chest_cr, **changes)
    assert not result.fits
    assert problem in result.problems
    assert result.reason.startswith("not scored: this model reads chest radiographs")


def test_a_cr_storage_class_with_no_modality_passes_but_a_ct_class_does_not(
    chest_cr: LoadedScan,
) -> None:
    assert _check(chest_cr, Modality=None).fits
    info = replace(chest_cr.info, modality=None, sop_class_uid="1.2.840.10008.5.1.4.1.1.2")
    dataset = copy.deepcopy(chest_cr.dataset)
    del dataset.Modality
    dataset.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    result = contract_check(CHEST, info=info, dataset=dataset)
    assert not result.fits


def test_png_is_checked_for_channels_and_size_only() -> None:
    rng = np.random.default_rng(0)
    grey = _load(png_bytes(rng.integers(0, 256, (64, 64), dtype=np.uint8)))
    assert contract_check(CHEST, info=grey.info).fits
    colour = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    result = contract_check(CHEST, info=_load(png_bytes(colour)).info)
    assert not result.fits and "colour image" in result.problems
    tiny = contract_check(CHEST, info=_load(png_bytes(np.zeros((16, 16), np.uint8))).info)
    assert not tiny.fits
    assert "16x16 pixels (at least 28x28 needed)" in tiny.reason


def test_contract_round_trips_and_defaults_per_collection() -> None:
    assert InputContract.from_dict(CHEST.to_dict()) == CHEST
    made = contract_for_dataset(source="x/pneumoniamnist_64.npz", channels=1, image_size=(64, 64))
    assert made.modalities == ("CR", "DX") and made.min_size == (64, 64)
    other = contract_for_dataset(source="folder", channels=3, image_size=(32, 32))
    assert other.modalities == () and other.channels == 3
    with pytest.raises(ValueError, match="not a valid input contract"):
        InputContract.from_dict({"modalities": ["CR"]})
