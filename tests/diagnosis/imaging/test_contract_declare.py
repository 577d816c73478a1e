"""A model admin's stated input contract: DICOM terms checked, MedMNIST defaults when nothing is
stated, and the contract a trained model carries settled from the images."""

from __future__ import annotations

import pytest

from diagnosis.imaging.contract import (
    collection_of,
    contract_declare,
    contract_for_training,
    contract_rows,
    contract_terms,
)


@pytest.mark.parametrize(
    ("attribute", "text", "fragment"),
    [
        ("modalities", "cr", "write 'CR', not 'cr'"),
        ("modalities", "XR", "not a DICOM modality code"),
        ("modalities", "CR, CR", "only once"),
        ("photometric", "GREY", "not a photometric interpretation"),
        ("body_parts", "CHEST-WALL", "not a DICOM code string"),
        ("views", "POSTEROANTERIOR_VIEW", "not a DICOM code string"),
    ],
)
def test_terms_refuse_with_a_specific_message(attribute, text, fragment) -> None:
    with pytest.raises(ValueError, match=fragment):
        contract_terms(text, attribute=attribute)


def test_terms_accept_defined_terms() -> None:
    assert contract_terms(" CR,DX ", attribute="modalities") == ("CR", "DX")
    assert contract_terms("PALETTE COLOR", attribute="photometric") == ("PALETTE COLOR",)
    assert contract_terms("CHEST, UPPER_LIMB", attribute="body_parts") == ("CHEST", "UPPER_LIMB")


def test_collection_matches_name_path_or_file() -> None:
    assert collection_of("PneumoniaMNIST") == "pneumoniamnist"
    assert collection_of("PneumoniaMNIST 64") == "pneumoniamnist"
    assert collection_of("my set", "/data/breastmnist_128.npz") == "breastmnist"
    assert collection_of("chest films", "upload.zip") is None


def test_nothing_stated_gives_the_collection_default_with_open_size() -> None:
    data = contract_declare({"description": "", "modalities": ()}, names=["PneumoniaMNIST"])
    assert data["modalities"] == ["CR", "DX"] and data["body_parts"] == ["CHEST"]
    assert data["min_size"] is None and data["collection"] == "pneumoniamnist"
    assert contract_declare({}, names=["chest films"]) == {}


def test_a_stated_contract_replaces_the_default_and_blank_means_any() -> None:
    data = contract_declare(
        {"description": "adult chest radiographs", "modalities": ("DX",), "channels": 1},
        names=["PneumoniaMNIST"],
    )
    assert data["modalities"] == ["DX"] and data["body_parts"] == [] and data["views"] == []
    # The default's SOP classes were for CR and DX; with DX alone they are not carried.
    assert data["sop_classes"] == [] and data["collection"] == ""


def test_a_stated_contract_needs_words_and_consistent_channels() -> None:
    with pytest.raises(ValueError, match="what the model reads"):
        contract_declare({"modalities": ("CR",)}, names=[])
    with pytest.raises(ValueError, match="MONOCHROME1 or MONOCHROME2"):
        contract_declare({"description": "x", "channels": 1, "photometric": ("RGB",)}, names=[])


def test_training_settles_size_and_channels_and_refuses_a_contradiction() -> None:
    stored = contract_declare({}, names=["pneumoniamnist"])
    contract = contract_for_training(stored, source="x.npz", channels=1, image_size=(64, 64))
    assert contract.min_size == (64, 64) and contract.modalities == ("CR", "DX")
    with pytest.raises(ValueError, match="says 1 channel"):
        contract_for_training(stored, source="x.npz", channels=3, image_size=(28, 28))
    # No stored contract: the file name's default, as before contracts could be stated.
    fallback = contract_for_training(
        {}, source="/d/pneumoniamnist.npz", channels=1, image_size=(28, 28)
    )
    assert fallback.body_parts == ("CHEST",)


def test_rows_say_each_attribute_in_words() -> None:
    rows = dict(contract_rows(contract_declare({}, names=["pneumoniamnist"])))
    assert rows["reads"] == "chest radiographs"
    assert rows["modalities"] == "CR (computed radiograph), DX (digital radiograph)"
    assert rows["minimum size"] == "the training images' size" and rows["views"] == "PA, AP"
    assert dict(contract_rows({"description": "x"}))["body parts"] == "any"


def test_the_default_submitted_unchanged_keeps_its_collection() -> None:
    default = contract_declare({}, names=["pneumoniamnist"])
    stated = {
        "description": default["description"],
        **{k: tuple(default[k]) for k in ("modalities", "body_parts", "views", "photometric")},
        "channels": 1,
    }
    assert contract_declare(stated, names=["PneumoniaMNIST"]) == default
