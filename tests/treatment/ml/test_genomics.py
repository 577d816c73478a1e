from __future__ import annotations

import json

import pytest

from treatment.ml.genomics import analyse_genomics, compare_clinical_vs_genes, load_cohort


def test_cohort_loads_offline():
    cohort = load_cohort()
    assert cohort.X.shape == (198, 5 + 76)
    assert len(cohort.genes) == 76 and int(cohort.y["event"].sum()) == 51
    assert not cohort.X.isna().any().any()


def test_clinical_vs_genes_returns_both_c_indices_on_the_same_folds():
    result = compare_clinical_vs_genes(n_splits=3, n_repeats=1, seed=0)
    assert result["n_folds"] == 3
    for key in ("c_clinical_mean", "c_clinical_genes_mean"):
        assert 0.5 < result[key] < 0.9
    for fold in result["folds"]:
        assert fold["difference"] == pytest.approx(fold["c_clinical_genes"] - fold["c_clinical"])
    assert result["difference_mean"] == pytest.approx(
        result["c_clinical_genes_mean"] - result["c_clinical_mean"]
    )
    assert result["difference_sd"] >= 0


def test_prognosis_model_names_its_drivers():
    result = analyse_genomics(n_splits=3, n_repeats=1)
    features = [d["feature"] for d in result.drivers]
    # Clinical variables are unpenalised, so all stay in; some genes must be selected too.
    assert set(result.clinical_features) <= set(features)
    assert any(d["type"] == "gene" for d in result.drivers)
    er = next(d for d in result.drivers if d["feature"] == "er=positive")
    assert er["hazard_ratio_per_sd"] == pytest.approx(2.718281828 ** er["coefficient_per_sd"])
    json.dumps(result.to_dict())
