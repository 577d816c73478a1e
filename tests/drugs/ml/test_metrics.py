from __future__ import annotations

import math

import numpy as np
import pytest

from drugs.ml import metrics
from drugs.ml.metrics import METRIC_KEYS, MOSES_PUBLISHED, moses_metrics, uniqueness_collapse

TRAIN = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "CCN(CC)CC"]


def test_keys_are_exactly_the_moses_set() -> None:
    result = moses_metrics(["CCO"], TRAIN)
    assert tuple(result) == METRIC_KEYS
    # Without a test set the comparisons are not computable, not zero.
    assert all(result[k] is None for k in ("frag", "scaff", "snn", "fcd"))


def test_invalid_strings_lower_validity() -> None:
    result = moses_metrics(["CCO", "C1CC", "xyz", "CCCC"], TRAIN)
    assert result["valid"] == pytest.approx(0.5)
    assert moses_metrics(["C1CC", "((("], TRAIN)["valid"] == 0.0
    assert moses_metrics([], TRAIN)["valid"] is None


def test_duplicates_lower_uniqueness(moses_train: list[str]) -> None:
    distinct = moses_train[:500]
    result = moses_metrics(distinct * 2, TRAIN)
    assert result["unique@1k"] == pytest.approx(0.5)
    assert result["unique@10k"] is None  # needs 10k valid molecules
    # Written differently, still the same molecule; only the first k valid ones count.
    generated = ["bad("] * 5 + ["OCC"] * 10 + ["CCO"] * 990 + distinct
    canonical = metrics._features(generated, full=False).canonical
    assert metrics.unique_at(canonical, 1000) == pytest.approx(1 / 1000)
    assert metrics.unique_at(distinct * 2, 1000) == pytest.approx(0.5)
    assert metrics.unique_at(distinct, 500) == 1.0


def test_a_training_molecule_is_not_novel() -> None:
    # "OCC" is ethanol, in the training set as "CCO".
    result = moses_metrics(["OCC", "OCC", "CCCO"], TRAIN)
    assert result["novelty"] == pytest.approx(0.5)  # over the distinct valid: {CCO, CCCO}
    assert moses_metrics(TRAIN, TRAIN)["novelty"] == 0.0


def test_internal_diversity() -> None:
    identical = moses_metrics(["c1ccccc1O"] * 20, TRAIN)
    assert identical["intdiv"] == pytest.approx(0.0, abs=1e-9)
    assert identical["intdiv2"] == pytest.approx(0.0, abs=1e-9)
    varied = moses_metrics(TRAIN + ["O=C(O)CCc1ccncc1", "FC(F)(F)c1ccc(Cl)cc1"], TRAIN)
    assert 0.5 < varied["intdiv"] < 1.0
    assert varied["intdiv2"] <= varied["intdiv"]


def test_tanimoto_matches_rdkit(moses_test: list[str]) -> None:
    from rdkit import Chem, DataStructs

    smiles = ["CCO", "CCCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O"]
    fps = metrics._features(smiles).fingerprints
    generator = metrics._morgan_generator()
    bits = [generator.GetFingerprint(Chem.MolFromSmiles(s)) for s in smiles]
    pairs = np.array([[DataStructs.TanimotoSimilarity(a, b) for a in bits] for b in bits])
    intdiv, intdiv2 = metrics.internal_diversities(fps)
    assert intdiv == pytest.approx(1 - pairs.mean(1).mean(), abs=1e-7)
    assert intdiv2 == pytest.approx(1 - np.sqrt((pairs**2).mean(1)).mean(), abs=1e-7)
    reference = moses_test[:200]
    ref_bits = [generator.GetFingerprint(Chem.MolFromSmiles(s)) for s in reference]
    index = metrics.FingerprintIndex.of(metrics._features(reference).fingerprints)
    expected = [max(DataStructs.BulkTanimotoSimilarity(b, ref_bits)) for b in bits]
    np.testing.assert_allclose(metrics.max_tanimoto(index, fps), expected, rtol=1e-6)


def test_filters_pass_rate() -> None:
    result = moses_metrics(["CCO", "C[N+](C)(C)C", "O=C1NC(=S)SC1=Cc1ccc(O)c(O)c1", "CCN"], TRAIN)
    assert result["filters"] == pytest.approx(0.5)


def test_comparisons_with_a_test_set(moses_train: list[str], moses_test: list[str]) -> None:
    test = moses_test[:300]
    same = moses_metrics(test, moses_train, test)
    assert same["snn"] == pytest.approx(1.0)
    assert same["frag"] == pytest.approx(1.0)
    assert same["scaff"] == pytest.approx(1.0)
    assert same["fcd"] == pytest.approx(0.0, abs=1e-3)
    # A sample of the training distribution is close; a handful of tiny molecules is far.
    held_out = moses_metrics(moses_train[:300], moses_train, test)
    tiny = moses_metrics(["CCO", "CCN", "CCCl", "CC=O", "COC", "CCS"] * 20, moses_train, test)
    # FCD is biased upwards on small samples (a 512-d covariance from 300 rows), so compare.
    assert 3 * held_out["fcd"] < tiny["fcd"]
    assert held_out["snn"] > tiny["snn"]
    assert held_out["frag"] > tiny["frag"]
    assert tiny["scaff"] is None  # no ring system at all: nothing to compare
    assert held_out["novelty"] == 0.0


def test_uniqueness_collapse() -> None:
    assert not uniqueness_collapse([])
    assert not uniqueness_collapse([0.99, 0.98, 0.97, 0.99])
    assert uniqueness_collapse([0.99, 0.95, 0.6])  # fell by over 30 %
    assert uniqueness_collapse([0.4])  # most samples repeat
    assert not uniqueness_collapse([None, 0.9, math.nan])


def test_published_rows_are_sourced_values() -> None:
    assert MOSES_PUBLISHED["CharRNN"]["valid"] == pytest.approx(0.975, abs=1e-3)
    assert MOSES_PUBLISHED["CharRNN"]["novelty"] == pytest.approx(0.842, abs=1e-3)
    assert MOSES_PUBLISHED["CharRNN"]["fcd"] == pytest.approx(0.073, abs=1e-3)
    assert MOSES_PUBLISHED["LatentGAN"]["valid"] == pytest.approx(0.897, abs=1e-3)
    assert MOSES_PUBLISHED["LatentGAN"]["fcd"] == pytest.approx(0.297, abs=1e-3)
    for row in MOSES_PUBLISHED.values():
        assert set(row) <= set(METRIC_KEYS)
