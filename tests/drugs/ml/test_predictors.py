from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest

from drugs.ml.datasets import moleculenet_dir
from drugs.ml.predictors import (
    ENDPOINTS,
    PredictorArtifact,
    fit_predictor,
    load_endpoint,
    scaffold_groups,
)


def test_registry_files_and_columns_exist() -> None:
    """Every endpoint's file has its columns and over 500 labelled rows (read as text: the
    RDKit parse of every row, load_endpoint's, is what the smallest one checks below)."""
    for name, endpoint in ENDPOINTS.items():
        path = moleculenet_dir() / endpoint.file
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            assert {endpoint.smiles_column, endpoint.column} <= set(reader.fieldnames or ()), name
            labels = [row[endpoint.column].strip() for row in reader]
        y = np.array([float(v) for v in labels if v])
        assert len(y) > 500 and np.isfinite(y).all(), name
        if endpoint.task == "classification":
            assert set(np.unique(y)) == {0, 1}, name
    smallest = min(ENDPOINTS, key=lambda n: (moleculenet_dir() / ENDPOINTS[n].file).stat().st_size)
    smiles, y, task = load_endpoint(smallest)
    assert task == ENDPOINTS[smallest].task and len(smiles) == len(y) > 500


def test_esol_is_solubility_not_logp() -> None:
    smiles, y, task = load_endpoint("ESOL")
    assert task == "regression"
    # Measured log solubility (mol/L): mostly negative, roughly -11.6 .. 1.6.
    assert -12 < y.min() < -10 and 1 < y.max() < 2 and np.median(y) < -2


def test_scaffold_groups_keep_a_series_together() -> None:
    groups = scaffold_groups(["c1ccccc1CC", "c1ccccc1CCC", "C1CCNCC1C", "CCO", "CCN"])
    assert groups[0] == groups[1] != groups[2]
    assert groups[3] != groups[4]  # acyclic molecules have no shared scaffold


def test_bbbp_random_forest_beats_chance(tmp_path: Path) -> None:
    smiles, y, task = load_endpoint("BBBP")
    progress: list[float] = []
    artifact, metrics = fit_predictor(
        smiles, y, task, cv_folds=3, n_estimators=60, on_progress=lambda f, s: progress.append(f)
    )
    assert metrics["cv"] == "scaffold" and metrics["n"] == len(smiles)
    assert metrics["roc_auc_mean"] > 0.8  # chance is 0.5
    assert metrics["roc_auc_sd"] < 0.1
    assert progress[-1] == 1.0 and progress == sorted(progress)

    p = artifact.predict(["CN1CCC[C@H]1c1cccnc1", "not a smiles", "CC(=O)Oc1ccccc1C(=O)O"])
    assert np.isnan(p[1]) and 0 <= p[0] <= 1 and 0 <= p[2] <= 1
    reward = artifact.reward(["CN1CCC[C@H]1c1cccnc1", "not a smiles"])
    assert reward[1] == 0.0

    # Applicability domain: the threshold read from cross-validation; a training molecule is
    # inside, an inorganic salt nothing like the training set is outside.
    threshold = artifact.domain["threshold"]
    assert 0.1 <= threshold <= 0.9 and metrics["applicability_threshold"] == threshold
    assert 0 < metrics["applicability_cv_outside_rate"] < 0.6
    inside, salt, invalid = artifact.applicability([smiles[0], "[Fe+2].[Cl-].[Cl-]", "C1CC("])
    assert inside["status"] == "inside" and inside["max_similarity"] == 1.0
    assert salt["status"] == "outside" and salt["max_similarity"] < threshold
    assert salt["text"].startswith("outside the applicability domain (max similarity 0.")
    assert invalid["status"] == "unknown"

    path = tmp_path / "bbbp.joblib"
    artifact.save(path)
    loaded = PredictorArtifact.load(path)
    np.testing.assert_array_equal(loaded.predict(smiles[:50]), artifact.predict(smiles[:50]))
    assert loaded.metrics == metrics and loaded.task == "classification"
    assert loaded.applicability(["[Fe+2].[Cl-].[Cl-]"]) == [salt]

    # An artifact saved before the domain existed says so instead of guessing.
    old = PredictorArtifact(model=artifact.model, task="classification", kind="rf", metrics={})
    old.save(path)
    assert PredictorArtifact.load(path).applicability(["CCO"])[0]["text"] == (
        "applicability domain unknown"
    )


def test_esol_regression_beats_predicting_the_mean() -> None:
    smiles, y, task = load_endpoint("ESOL")
    artifact, metrics = fit_predictor(smiles, y, task, cv_folds=3, n_estimators=60)
    assert metrics["rmse_mean"] < 0.85 * metrics["baseline_rmse"]
    assert metrics["r2_mean"] > 0.2
    # Benzene dissolves far better than a large polycyclic aromatic hydrocarbon.
    benzene, coronene = artifact.predict(["c1ccccc1", "c1cc2ccc3ccc4ccc5ccc6ccc1c7c2c3c4c5c67"])
    assert benzene > coronene
    reward = artifact.reward(["c1ccccc1"])
    assert 0 <= reward[0] <= 1


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(KeyError):
        load_endpoint("nope")
    with pytest.raises(ValueError, match="0 or 1"):
        fit_predictor(["CCO"] * 20, [2] * 20, "classification")
    with pytest.raises(ValueError, match="at least"):
        fit_predictor(["CCO", "CCN"] * 10, [1, 1] * 9 + [0, 1], "classification")
    with pytest.raises(ValueError, match="kind"):
        fit_predictor(["CCO", "CCN"] * 10, [0, 1] * 10, "classification", kind="svm")
