"""Fixtures for remote_care.ml: real PhysioNet 2012 set-A stays (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from remote_care.ml.physionet import Stay, load_set_a


@pytest.fixture(scope="session")
def set_a_dir() -> Path:
    # The copy MedAI ships (data/physionet2012, ODC-BY) is the one the product trains on.
    path = Path(__file__).resolve().parents[3] / "data" / "physionet2012"
    assert (path / "set-a.tar.gz").is_file(), f"set-a.tar.gz not found in {path}"
    return path


@pytest.fixture(scope="session")
def stays_700(set_a_dir: Path) -> list[Stay]:
    """The first 700 stays of set A by RecordID (about 100 deaths)."""
    return load_set_a(set_a_dir / "set-a.tar.gz", set_a_dir / "Outcomes-a.txt", limit=700)


@pytest.fixture(scope="session")
def by_id(stays_700: list[Stay]) -> dict[int, Stay]:
    return {s.record_id: s for s in stays_700}
