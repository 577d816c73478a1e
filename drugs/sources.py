"""Where the built-in molecule data is read from: the copies shipped under data/molecules
(so a fresh machine works offline), and the full MOSES training set in the molsets wheel."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

SHIPPED = Path(settings.BASE_DIR) / "data" / "molecules"
MOSES_10K = SHIPPED / "moses_10k"
MOLECULENET = SHIPPED / "moleculenet"

MOSES_ATTRIBUTION = (
    "MOSES (MIT): Polykovskiy et al., Molecular Sets (MOSES), Front. Pharmacol. 11:565644 (2020)."
)


def moses_train_10k() -> Path:
    return MOSES_10K / "train10k.csv"


def moses_test_10k() -> Path:
    return MOSES_10K / "test_10k.csv"


def moses_test_scaffolds_10k() -> Path:
    return MOSES_10K / "test_scaffolds_10k.csv"


def moses_train_full() -> Path | None:
    """The 1.58M-SMILES MOSES training set from the molsets wheel, or None if not installed."""
    from drugs.ml.datasets import moses_train_path

    try:
        return moses_train_path()
    except FileNotFoundError:
        return None


def moleculenet_dir() -> Path:
    """MoleculeNet sets for property predictors: the shipped copies."""
    return MOLECULENET
