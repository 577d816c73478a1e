"""Fixtures for remote_care: the shared PhysioNet records (real data, no database)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """The shared data folder: $MEDAI_SHARED_DIR, else ../shared beside the repository."""
    return Path(os.environ.get("MEDAI_SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def physio_dir() -> Path:
    path = shared_dir() / "datasets" / "physio"
    # Fail rather than skip: a validation that silently stops running is worse than a red test.
    assert path.is_dir(), f"PhysioNet data not found at {path}; set MEDAI_SHARED_DIR"
    return path
