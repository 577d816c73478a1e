"""`python -m drugs.ml moses`: the stable MOSES table of a generator artifact, with the test-set
statistics computed once and read back from the cache."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from drugs.ml import benchmark, metrics
from drugs.ml.gan import GanArtifact, GanConfig, Generator, Vocab

ROW_KEYS = [
    "valid",
    "unique@1k",
    "unique@10k",
    "novelty",
    "intdiv",
    "filters",
    "frag",
    "scaff",
    "snn",
    "fcd_test",
]
SF_KEYS = ["frag_testsf", "scaff_testsf", "fcd_testsf"]


@pytest.fixture
def small_sets(tmp_path, moses_train, moses_test):
    """Tiny train / test / scaffold-test files and an (untrained) generator artifact."""
    paths = {}
    for name, smiles in (
        ("train", moses_train[:100]),
        ("test", moses_test[:20]),
        ("scaffolds", moses_test[20:40]),
    ):
        paths[name] = tmp_path / f"{name}.csv"
        paths[name].write_text("SMILES\n" + "\n".join(smiles) + "\n")
    config = GanConfig(embed_dim=8, hidden_dim=16, layers=1, max_length=40)
    vocab = Vocab.from_smiles(moses_train[:100])
    artifact = GanArtifact(vocab, config, Generator(len(vocab), config).state_dict())
    paths["artifact"] = tmp_path / "g.pt"
    artifact.save(paths["artifact"])
    return paths


def _run(monkeypatch, capsys, paths, cache, *extra: str) -> str:
    from drugs.ml.__main__ import main

    argv = ["drugs.ml", "moses", "--artifact", str(paths["artifact"]), "--samples", "20"]
    argv += ["--train", str(paths["train"]), "--test", str(paths["test"])]
    argv += ["--test-scaffolds", str(paths["scaffolds"]), "--cache-dir", str(cache)]
    monkeypatch.setattr(sys, "argv", [*argv, "--jobs", "1", "--device", "cpu", *extra])
    main()
    return capsys.readouterr().out


def _pairs(line: str) -> tuple[str, list[str], dict[str, str]]:
    words = line.split()
    first = next(i for i, w in enumerate(words) if "=" in w)
    pairs = dict(w.split("=", 1) for w in words[first:])
    return " ".join(words[:first]), list(pairs), pairs


def test_moses_prints_one_stable_line_per_row_and_caches_the_statistics(
    tmp_path, monkeypatch, capsys, small_sets
):
    cache = tmp_path / "cache"
    out = _run(monkeypatch, capsys, small_sets, cache)
    rows = [line for line in out.splitlines() if not line.startswith("#")]
    labels = [_pairs(line)[0] for line in rows]
    assert labels == [
        "generator",
        "training set",
        "published CharRNN",
        "published LatentGAN",
        "published ORGAN",
    ]
    for line in rows[:2]:
        _, keys, pairs = _pairs(line)
        assert keys == ROW_KEYS + SF_KEYS
        assert pairs["unique@10k"] == "-"  # fewer than 10k valid: not computed, not faked
    _, _, train_row = _pairs(rows[1])
    assert train_row["valid"] == "1.0000" and train_row["novelty"] == "0.0000"
    assert float(train_row["fcd_test"]) >= 0 and 0 < float(train_row["snn"]) <= 1
    _, keys, published = _pairs(rows[2])
    assert keys == ROW_KEYS and published["valid"] == "0.9748" and published["fcd_test"] == "0.0732"
    assert "# seconds sampling=" in out

    # Computed once: both reference sets, the canonical training set and the training row.
    files = sorted(p.name.split("-")[0] for p in cache.iterdir())
    assert files == ["reference", "reference", "row", "train"]
    test_stats = next(iter(sorted(cache.glob("reference-*.npz"))))
    cached = benchmark.load_reference_stats(test_stats)
    assert cached is not None and cached.fcd is not None

    # The second run reads them back and gives the same table (same seed, same samples).
    again = _run(monkeypatch, capsys, small_sets, cache, "--json")
    table = json.loads(again)
    assert table["samples"] == 20 and len(table["artifact_sha256"]) == 64
    assert list(table["rows"]["generator"]) == ROW_KEYS + SF_KEYS
    first = {k: v for k, v in _pairs(rows[0])[2].items()}
    for key, value in table["rows"]["generator"].items():
        assert first[key] == ("-" if value is None else f"{value:.4f}"), key


def test_reference_statistics_survive_the_cache_file(tmp_path, moses_test):
    stats = metrics.reference_stats(moses_test[:30], with_fcd=False)
    benchmark.save_reference_stats(stats, tmp_path / "s.npz")
    back = benchmark.load_reference_stats(tmp_path / "s.npz")
    assert back is not None and back.fcd is None and back.size == 30
    assert np.array_equal(back.fingerprints, stats.fingerprints)
    assert back.fragments == stats.fragments and back.scaffolds == stats.scaffolds


class _Evil:
    def __reduce__(self):
        import os

        return (os.getcwd, ())


def test_precomputed_statistics_are_read_without_running_code(tmp_path, moses_test):
    from collections import Counter

    stats = {
        "FCD": {"mu": np.zeros(512, np.float32), "sigma": np.eye(512)},
        "SNN": {"fps": np.zeros((3, 1024), np.uint8)},
        "Frag": {"frag": Counter({"C": 2})},
        "Scaf": {"scaf": Counter({"c1ccccc1": 1})},
    }
    good = tmp_path / "good.npz"
    np.savez(good, stats=np.array(stats, dtype=object))
    loaded = benchmark.moses_precomputed_stats(good)
    assert loaded.size == 3 and loaded.fragments == Counter({"C": 2}) and loaded.fcd is not None

    evil = tmp_path / "evil.npz"
    np.savez(evil, stats=np.array({**stats, "x": _Evil()}, dtype=object))
    with pytest.raises(Exception, match="not allowed"):
        benchmark.moses_precomputed_stats(evil)
