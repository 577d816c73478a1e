"""Property predictors on Morgan fingerprints for the MoleculeNet endpoints.

Random forest or gradient boosting on Morgan radius-2 2048-bit fingerprints, with cross-validation
over Bemis-Murcko scaffold groups: molecules sharing a scaffold never sit on both sides of a fold,
which estimates performance on new chemical series rather than on near-duplicates (random splits
flatter fingerprint models; Wu et al., MoleculeNet, Chem. Sci. 2018).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem.Scaffolds import MurckoScaffold
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.metrics import (
    average_precision_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold
from threadpoolctl import threadpool_limits

from drugs.ml import chem
from drugs.ml import domain as applicability_domain
from drugs.ml.datasets import moleculenet_dir

FINGERPRINT_BITS = 2048
FINGERPRINT_RADIUS = 2
ARTIFACT_FORMAT = 1


@dataclass(frozen=True)
class Endpoint:
    """A labelled property in one of the shared MoleculeNet files."""

    file: str
    smiles_column: str
    column: str
    task: str  # 'classification' | 'regression'
    description: str
    units: str
    higher_is_better: bool = True  # for use as a generation reward


ENDPOINTS: dict[str, Endpoint] = {
    "BBBP": Endpoint(
        "BBBP.csv",
        "smiles",
        "p_np",
        "classification",
        "Blood-brain barrier penetration (1 = penetrates)",
        "probability",
    ),
    "BACE": Endpoint(
        "bace.csv",
        "mol",
        "Class",
        "classification",
        "BACE-1 inhibition (1 = IC50 at most 100 nM)",
        "probability",
    ),
    "HIV": Endpoint(
        "HIV.csv.gz",
        "smiles",
        "HIV_active",
        "classification",
        "Inhibits HIV replication (DTP AIDS antiviral screen, confirmed (moderately) active)",
        "probability",
    ),
    "ClinTox": Endpoint(
        "clintox.csv",
        "smiles",
        "CT_TOX",
        "classification",
        "Failed clinical trials for toxicity (ClinTox)",
        "probability",
        higher_is_better=False,
    ),
    "Tox21 NR-AR": Endpoint(
        "tox21.csv",
        "smiles",
        "NR-AR",
        "classification",
        "Tox21: androgen receptor agonism (nuclear receptor assay)",
        "probability",
        higher_is_better=False,
    ),
    "Tox21 NR-AhR": Endpoint(
        "tox21.csv",
        "smiles",
        "NR-AhR",
        "classification",
        "Tox21: aryl hydrocarbon receptor activation",
        "probability",
        higher_is_better=False,
    ),
    "Tox21 SR-ARE": Endpoint(
        "tox21.csv",
        "smiles",
        "SR-ARE",
        "classification",
        "Tox21: oxidative stress response (antioxidant response element)",
        "probability",
        higher_is_better=False,
    ),
    "Tox21 SR-p53": Endpoint(
        "tox21.csv",
        "smiles",
        "SR-p53",
        "classification",
        "Tox21: DNA damage response (p53 activation)",
        "probability",
        higher_is_better=False,
    ),
    "ESOL": Endpoint(
        "delaney.csv",
        "smiles",
        "logp",  # mislabelled in chemprop's copy: the values are measured log solubility
        "regression",
        "Aqueous solubility (ESOL / Delaney, measured)",
        "log10(mol/L)",
    ),
    "Lipophilicity": Endpoint(
        "lipo.csv",
        "smiles",
        "lipo",
        "regression",
        "Octanol/water distribution coefficient at pH 7.4 (AstraZeneca, ChEMBL)",
        "logD",
        higher_is_better=False,
    ),
    "FreeSolv": Endpoint(
        "freesolv.csv",
        "smiles",
        "freesolv",
        "regression",
        "Hydration free energy in water (FreeSolv, experimental)",
        "kcal/mol",
        higher_is_better=False,
    ),
}


def load_endpoint(
    name: str, data_dir: str | Path | None = None
) -> tuple[list[str], np.ndarray, str]:
    """(canonical SMILES, labels, task) of an endpoint; rows with an invalid SMILES or no label
    are dropped. `data_dir` defaults to the shared MoleculeNet folder."""
    if name not in ENDPOINTS:
        raise KeyError(f"unknown endpoint {name!r}; known: {', '.join(ENDPOINTS)}")
    endpoint = ENDPOINTS[name]
    path = Path(data_dir) if data_dir is not None else moleculenet_dir()
    path = path / endpoint.file
    opener = gzip.open if path.suffix == ".gz" else open
    smiles: list[str] = []
    labels: list[float] = []
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            value = (row.get(endpoint.column) or "").strip()
            if not value:
                continue
            try:
                y = float(value)
            except ValueError:
                continue
            canonical = chem.canonical_smiles(row.get(endpoint.smiles_column) or "")
            if canonical is None or not math.isfinite(y):
                continue
            smiles.append(canonical)
            labels.append(y)
    y_array = np.asarray(labels)
    if endpoint.task == "classification":
        y_array = y_array.astype(int)
    return smiles, y_array, endpoint.task


def featurize(smiles: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(Morgan bit matrix, valid mask); invalid rows are zeros."""
    x = chem.morgan_matrix(smiles, FINGERPRINT_BITS, FINGERPRINT_RADIUS)
    valid = np.array([chem.mol_from_smiles(s) is not None for s in smiles], dtype=bool)
    return x, valid


def scaffold_groups(smiles: list[str]) -> np.ndarray:
    """An integer group per molecule: its Bemis-Murcko scaffold (acyclic ones share one group
    per molecule, since they have no scaffold to share)."""
    ids: dict[str, int] = {}
    out = np.zeros(len(smiles), dtype=int)
    with rdBase.BlockLogs():
        for i, s in enumerate(smiles):
            mol = Chem.MolFromSmiles(s)
            scaffold = ""
            if mol is not None:
                try:
                    scaffold = Chem.MolToSmiles(MurckoScaffold.GetScaffoldForMol(mol))
                except (ValueError, RuntimeError):
                    scaffold = ""
            key = scaffold or f"acyclic:{i}"
            out[i] = ids.setdefault(key, len(ids))
    return out


def scaffold_holdout(smiles: list[str], fraction: float = 0.2) -> np.ndarray:
    """A deterministic scaffold held-out mask: a molecule is held out when the sha256 of its
    Bemis-Murcko scaffold (its own SMILES when acyclic) falls in the first ``fraction`` of
    the hash space. Whole scaffolds go one way, independent of row order and file length, so
    the same molecules are held out for every version of an endpoint."""
    cut = int(fraction * 2**32)
    out = np.zeros(len(smiles), dtype=bool)
    with rdBase.BlockLogs():
        for i, s in enumerate(smiles):
            mol = Chem.MolFromSmiles(s)
            scaffold = ""
            if mol is not None:
                try:
                    scaffold = Chem.MolToSmiles(MurckoScaffold.GetScaffoldForMol(mol))
                except (ValueError, RuntimeError):
                    scaffold = ""
            key = scaffold or f"acyclic:{s}"
            out[i] = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) < cut
    return out


def _model(task: str, kind: str, seed: int, n_estimators: int, n_jobs: int = 1) -> Any:
    if kind == "random_forest":
        cls = RandomForestClassifier if task == "classification" else RandomForestRegressor
        extra = {"class_weight": "balanced_subsample"} if task == "classification" else {}
        return cls(
            n_estimators=n_estimators,
            min_samples_leaf=1,
            max_features="sqrt",
            n_jobs=n_jobs,
            random_state=seed,
            **extra,
        )
    if kind == "gradient_boosting":
        cls = (
            HistGradientBoostingClassifier
            if task == "classification"
            else HistGradientBoostingRegressor
        )
        extra = {"class_weight": "balanced"} if task == "classification" else {}
        return cls(max_iter=n_estimators, learning_rate=0.1, random_state=seed, **extra)
    raise ValueError(f"unknown model kind {kind!r} (random_forest or gradient_boosting)")


@dataclass
class PredictorArtifact:
    """A fitted property model with the facts needed to use and describe it."""

    model: Any
    task: str
    kind: str
    metrics: dict[str, Any]
    endpoint: str = ""
    y_range: tuple[float, float] = (0.0, 1.0)
    fingerprint: dict[str, int] = field(
        default_factory=lambda: {"radius": FINGERPRINT_RADIUS, "bits": FINGERPRINT_BITS}
    )
    # Applicability domain (domain.py): packed training fingerprints, threshold, CV bins.
    # None for artifacts saved before it existed: their domain is "unknown".
    domain: dict[str, Any] | None = None
    _reference: list[Any] | None = field(default=None, init=False, repr=False, compare=False)

    def applicability(self, smiles: list[str]) -> list[dict[str, Any]]:
        """Per molecule, its domain verdict (domain.describe): the maximum Tanimoto similarity
        to the training molecules against the threshold; 'unknown' for invalid SMILES or an
        artifact without training fingerprints."""
        if not smiles:
            return []
        if not self.domain:
            return [applicability_domain.describe(None, None) for _ in smiles]
        if self._reference is None:
            packed = np.asarray(self.domain["fingerprints"], dtype=np.uint8)
            bits = np.unpackbits(packed, axis=1, count=int(self.domain["n_bits"]))
            self._reference = applicability_domain.bitvects(bits)
        x, valid = featurize(list(smiles))
        queries = applicability_domain.bitvects(x[valid])
        sims = iter(applicability_domain.max_similarity(queries, self._reference))
        threshold = float(self.domain["threshold"])
        describe = applicability_domain.describe
        return [
            describe(float(next(sims)), threshold) if ok else describe(None, None) for ok in valid
        ]

    def predict(self, smiles: list[str]) -> np.ndarray:
        """Probability of the positive class, or the predicted value; NaN for invalid SMILES."""
        out = np.full(len(smiles), np.nan)
        if not smiles:
            return out
        x, valid = featurize(list(smiles))
        if valid.any():
            if self.task == "classification":
                out[valid] = self.model.predict_proba(x[valid])[:, 1]
            else:
                out[valid] = self.model.predict(x[valid])
        return out

    def reward(self, smiles: list[str], higher_is_better: bool = True) -> np.ndarray:
        """Predictions mapped to [0, 1] for use as a generation reward (0 for invalid SMILES);
        regression values are scaled by the training range."""
        p = self.predict(smiles)
        if self.task == "regression":
            low, high = self.y_range
            p = (p - low) / (high - low) if high > low else np.full_like(p, 0.5)
        p = np.clip(p, 0, 1)
        if not higher_is_better:
            p = 1 - p
        return np.nan_to_num(p, nan=0.0)

    def save(self, path: str | Path) -> None:
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        joblib.dump({"format": ARTIFACT_FORMAT, **state}, Path(path), compress=3)

    @classmethod
    def load(cls, path: str | Path) -> PredictorArtifact:
        """Load a model this project saved (joblib runs code on load: only our own files)."""
        data = joblib.load(Path(path))
        if data.pop("format", None) != ARTIFACT_FORMAT:
            raise ValueError("unsupported predictor artifact format")
        data["y_range"] = tuple(data["y_range"])
        return cls(**data)


def _summary(values: list[float]) -> tuple[float | None, float | None]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None, None
    return round(float(np.mean(finite)), 4), round(float(np.std(finite)), 4)


def fit_predictor(
    smiles: list[str],
    y: np.ndarray | list[float],
    task: str,
    *,
    kind: str = "random_forest",
    cv_folds: int = 5,
    seed: int = 0,
    n_estimators: int = 300,
    endpoint: str = "",
    n_jobs: int = 1,
    on_progress: Callable[[float, str], None] | None = None,
) -> tuple[PredictorArtifact, dict[str, Any]]:
    """Cross-validate over scaffold groups, then fit on all the data.

    Metrics: classification ROC-AUC (and PR-AUC) mean and SD over folds; regression RMSE, MAE
    and R2 mean and SD. Invalid SMILES are dropped (counted in `dropped_invalid`). `n_jobs`
    caps the threads (gradient boosting's OpenMP otherwise takes every core, and on a shared
    2-core machine ran 7x slower than on one thread).
    """
    with threadpool_limits(limits=n_jobs):
        return _fit_predictor(
            smiles, y, task, kind, cv_folds, seed, n_estimators, endpoint, n_jobs, on_progress
        )


def _fit_predictor(
    smiles: list[str],
    y: np.ndarray | list[float],
    task: str,
    kind: str,
    cv_folds: int,
    seed: int,
    n_estimators: int,
    endpoint: str,
    n_jobs: int,
    on_progress: Callable[[float, str], None] | None,
) -> tuple[PredictorArtifact, dict[str, Any]]:
    if task not in ("classification", "regression"):
        raise ValueError("task must be 'classification' or 'regression'")
    y = np.asarray(y, dtype=float)
    if len(smiles) != len(y):
        raise ValueError("smiles and y differ in length")
    x, valid = featurize(list(smiles))
    smiles_valid = [s for s, v in zip(smiles, valid) if v]
    x, y = x[valid], y[valid]
    if task == "classification":
        y = y.astype(int)
        if set(np.unique(y)) - {0, 1}:
            raise ValueError("classification labels must be 0 or 1")
        if min(np.bincount(y, minlength=2)) < cv_folds:
            raise ValueError(f"each class needs at least {cv_folds} molecules")
    if len(y) < 2 * cv_folds:
        raise ValueError(f"at least {2 * cv_folds} valid molecules are needed")

    groups = scaffold_groups(smiles_valid)
    splitter = (
        StratifiedGroupKFold(n_splits=cv_folds, shuffle=True, random_state=seed)
        if task == "classification"
        else GroupKFold(n_splits=cv_folds, shuffle=True, random_state=seed)
    )
    scores: dict[str, list[float]] = {}
    oof = np.full(len(y), np.nan)
    folds = list(splitter.split(x, y, groups))
    for fold, (tr, te) in enumerate(folds):
        if on_progress is not None:
            on_progress(fold / (cv_folds + 1), f"cross-validation fold {fold + 1}/{cv_folds}")
        model = _model(task, kind, seed + fold, n_estimators, n_jobs)
        model.fit(x[tr], y[tr])
        if task == "classification":
            p = model.predict_proba(x[te])[:, 1]
            oof[te] = p
            if len(np.unique(y[te])) == 2:
                scores.setdefault("roc_auc", []).append(roc_auc_score(y[te], p))
                scores.setdefault("pr_auc", []).append(average_precision_score(y[te], p))
        else:
            p = model.predict(x[te])
            oof[te] = p
            scores.setdefault("rmse", []).append(math.sqrt(mean_squared_error(y[te], p)))
            scores.setdefault("mae", []).append(mean_absolute_error(y[te], p))
            scores.setdefault("r2", []).append(r2_score(y[te], p))

    metrics: dict[str, Any] = {
        "cv": "scaffold",
        "cv_folds": cv_folds,
        "n": len(y),
        "dropped_invalid": int((~valid).sum()),
        "kind": kind,
        "task": task,
    }
    for name, values in scores.items():
        metrics[f"{name}_mean"], metrics[f"{name}_sd"] = _summary(values)
    if task == "classification":
        metrics["positives"] = int(y.sum())
        metrics["baseline_pr_auc"] = round(float(y.mean()), 4)  # a random ranking's PR-AUC
    else:
        # A model that always predicts the mean: the RMSE to beat.
        metrics["baseline_rmse"] = round(float(np.std(y)), 4)
    # Applicability domain: the CV error against each held-out molecule's similarity to the
    # molecules its fold was trained on sets the threshold (rule in domain.py).
    rows, sims = applicability_domain.cv_similarity(x, folds, seed)
    fitted_domain = applicability_domain.choose_threshold(sims, np.abs(y[rows] - oof[rows]))
    fitted_domain.update(fingerprints=np.packbits(x.astype(bool), axis=1), n_bits=x.shape[1])
    metrics["applicability_threshold"] = fitted_domain["threshold"]
    metrics["applicability_cv_outside_rate"] = fitted_domain["cv_outside_rate"]
    if on_progress is not None:
        on_progress(cv_folds / (cv_folds + 1), "fitting on all data")
    final = _model(task, kind, seed, n_estimators, n_jobs)
    final.fit(x, y)
    if on_progress is not None:
        on_progress(1.0, "done")
    artifact = PredictorArtifact(
        model=final,
        task=task,
        kind=kind,
        metrics=metrics,
        endpoint=endpoint,
        y_range=(float(np.min(y)), float(np.max(y))),
        domain=fitted_domain,
    )
    return artifact, metrics
