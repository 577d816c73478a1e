"""Where the molecule data lives: the MOSES sets inside the molsets wheel and the shared folder.

The molsets wheel is installed with `--no-deps` (its own requirements do not build), so
`import moses` fails; its data files are found through the distribution metadata instead, which
imports nothing.
"""

from __future__ import annotations

import csv
import gzip
import importlib.metadata
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    """The shared molecule data: $MEDAI_SHARED_DATA, else `<repo>/../shared/datasets/molecules`.

    `$MEDAI_SHARED_DATA` names the `datasets` folder (the one holding `molecules/`,
    `medmnist/`, ...). The default is the project's shared/ folder beside the repository, the same
    place the diagnosis and remote-care tests read their real data from ($MEDAI_SHARED_DIR there
    names shared/ itself and is honoured too).
    """
    explicit = os.environ.get("MEDAI_SHARED_DATA")
    if explicit:
        return Path(explicit) / "molecules"
    shared = os.environ.get("MEDAI_SHARED_DIR")
    base = Path(shared) if shared else REPO_ROOT.parent / "shared"
    return base / "datasets" / "molecules"


# The copies MedAI ships (data/molecules/ATTRIBUTION.md): used when present, so a fresh checkout
# needs no shared folder.
SHIPPED = REPO_ROOT / "data" / "molecules"


def moses_10k_dir() -> Path:
    """The MOSES authors' 10k subsets (train10k.csv, test_10k.csv, test_scaffolds_10k.csv)."""
    shipped = SHIPPED / "moses_10k"
    return shipped if shipped.is_dir() else shared_data_dir() / "moses_10k"


def moleculenet_dir() -> Path:
    """MoleculeNet property sets (chemprop's copies: BBBP.csv, tox21.csv, delaney.csv, ...)."""
    shipped = SHIPPED / "moleculenet"
    return shipped if shipped.is_dir() else shared_data_dir() / "moleculenet_chemprop"


def molsets_file(relative: str) -> Path:
    """A file inside the installed molsets wheel, e.g. 'moses/dataset/data/train.csv.gz'."""
    try:
        dist = importlib.metadata.distribution("molsets")
    except importlib.metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(
            "molsets is not installed; install it with: pip install --no-deps molsets==0.3.1"
        ) from exc
    path = Path(str(dist.locate_file(relative)))
    if not path.is_file():
        raise FileNotFoundError(f"{relative} is missing from the molsets installation ({path})")
    return path


def moses_train_path() -> Path:
    """The full MOSES training set (1,584,663 SMILES), gzipped CSV with a SMILES column."""
    return molsets_file("moses/dataset/data/train.csv.gz")


def moses_test_path() -> Path:
    """The full MOSES test set (176,074 SMILES) the published metrics were computed against."""
    return molsets_file("moses/dataset/data/test.csv.gz")


def moses_test_scaffolds_path() -> Path:
    """The MOSES scaffold test set (176,226 SMILES with scaffolds unseen in training)."""
    return molsets_file("moses/dataset/data/test_scaffolds.csv.gz")


def load_smiles_file(path: str | Path, limit: int | None = None) -> list[str]:
    """SMILES from a trusted data file (.csv/.csv.gz with a SMILES column, or .smi/.txt).

    For the project's own reference files; researcher uploads go through
    `chem.parse_molecule_file`, which validates every line. Returned as written in the file
    (the MOSES files are already RDKit-canonical).
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    stem = path.name.removesuffix(".gz")
    out: list[str] = []
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        if stem.endswith(".csv"):
            reader = csv.reader(handle)
            header = next(reader)
            lowered = [h.strip().lower() for h in header]
            for name in ("smiles", "canonical_smiles", "mol"):
                if name in lowered:
                    column = lowered.index(name)
                    break
            else:
                raise ValueError(f"{path} has no SMILES column (header: {header})")
            for row in reader:
                if limit is not None and len(out) >= limit:
                    break
                if len(row) > column and row[column].strip():
                    out.append(row[column].strip())
        else:
            for line in handle:
                if limit is not None and len(out) >= limit:
                    break
                token = line.split(maxsplit=1)[0] if line.strip() else ""
                if token and not token.startswith("#"):
                    out.append(token)
    return out
