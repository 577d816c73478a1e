"""A 2-D map of chemical space: where generated molecules fall among the training molecules.

PCA on Morgan radius-2 2048-bit fingerprints, fitted on (a seeded sample of) the training set
only, so the axes do not move when a different set of molecules is generated and two runs on
the same training set share one map. Deterministic: SVD with a fixed sign convention.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from drugs.ml import chem

METHOD = "PCA of Morgan fingerprints (radius 2, 2048 bits), fitted on the training molecules"


@dataclass
class ChemicalSpace:
    train_xy: np.ndarray  # (n_train_used, 2)
    generated_xy: np.ndarray  # (n_valid_generated, 2)
    method: str = METHOD
    train_smiles: list[str] = field(default_factory=list)
    generated_smiles: list[str] = field(default_factory=list)  # the valid ones, in order
    explained_variance: tuple[float, float] = (0.0, 0.0)  # fraction per axis


def _valid(smiles: list[str]) -> list[str]:
    return [s for s in smiles if chem.mol_from_smiles(s) is not None]


def chemical_space(
    train: list[str], generated: list[str], *, max_train: int = 3000, seed: int = 0
) -> ChemicalSpace:
    """Project a sample of `train` and the valid `generated` molecules onto the first two
    principal components of the training fingerprints."""
    if len(train) > max_train:
        # A seeded sample of the valid ones, parsing only as many as it takes (a training set
        # can hold 1.58M molecules).
        picked: list[int] = []
        for i in np.random.default_rng(seed).permutation(len(train)):
            if chem.mol_from_smiles(train[i]) is not None:
                picked.append(int(i))
                if len(picked) == max_train:
                    break
        train_valid = [train[i] for i in sorted(picked)]
    else:
        train_valid = _valid(train)
    generated_valid = _valid(generated)
    if len(train_valid) < 3:
        raise ValueError("at least 3 valid training molecules are needed for the map")
    x = chem.morgan_matrix(train_valid).astype(np.float64)
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    components = vt[:2]
    # SVD leaves each axis' sign arbitrary; fix it so the largest loading is positive.
    signs = np.sign(components[np.arange(2), np.abs(components).argmax(1)])
    components = components * signs[:, None]
    variance = s**2
    explained = variance[:2] / variance.sum() if variance.sum() > 0 else np.zeros(2)
    train_xy = (x - mean) @ components.T
    if generated_valid:
        g = chem.morgan_matrix(generated_valid).astype(np.float64)
        generated_xy = (g - mean) @ components.T
    else:
        generated_xy = np.zeros((0, 2))
    return ChemicalSpace(
        train_xy=train_xy,
        generated_xy=generated_xy,
        train_smiles=train_valid,
        generated_smiles=generated_valid,
        explained_variance=(float(explained[0]), float(explained[1])),
    )
