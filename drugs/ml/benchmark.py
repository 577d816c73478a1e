"""MOSES metrics of a generator artifact at the published protocol, with cached test statistics.

`moses_table(...)` samples a generator, computes the MOSES metrics against the full MOSES test set
(and the scaffold test set, "TestSF"), and a training-set row computed the same way (the same
number of molecules drawn from the training set with the same seed). What does not depend on the
generator is computed once and kept in a cache folder, keyed by the sha256 of the file it came
from: the test sets' statistics (fingerprints, BRICS fragment and scaffold counts, ChemNet mean
and covariance), the canonical training set (for novelty) and the training-set row itself.
The cache files are plain .npz / gzipped text (no pickle), so a cache folder is safe to share.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import pickle
import random
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

from drugs.ml import metrics
from drugs.ml.datasets import load_smiles_file

# The pairs each row prints, in order (the stable output): metrics.moses_metrics key ->
# printed name. TestSF columns follow when the scaffold test set was given.
PRINTED = {
    "valid": "valid",
    "unique@1k": "unique@1k",
    "unique@10k": "unique@10k",
    "novelty": "novelty",
    "intdiv": "intdiv",
    "filters": "filters",
    "frag": "frag",
    "scaff": "scaff",
    "snn": "snn",
    "fcd": "fcd_test",
}
PRINTED_SF = {"frag_sf": "frag_testsf", "scaff_sf": "scaff_testsf", "fcd_sf": "fcd_testsf"}
PUBLISHED_ROWS = ("CharRNN", "LatentGAN", "ORGAN")
# Bump when a metric's computation changes, so cached rows and statistics are recomputed.
CACHE_VERSION = 1


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# The MOSES authors' precomputed test statistics (what `moses.get_all_metrics` uses by default)

# The only globals their .npz pickles reference: anything else is refused, so loading it cannot
# run code.
_MOSES_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    ("collections", "Counter"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _MOSES_PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in MOSES statistics")
        if module == "numpy.core.multiarray":  # numpy 2 moved it
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def moses_precomputed_stats(path: str | Path) -> metrics.ReferenceStats:
    """ReferenceStats from a molsets `*_stats.npz` (FCD mean/covariance from the same ChemNet,
    SNN fingerprints, BRICS fragment and scaffold counts), read with a restricted unpickler."""
    with zipfile.ZipFile(path) as archive, archive.open("stats.npy") as raw:
        handle = io.BytesIO(raw.read())
    npy_format.read_magic(handle)
    npy_format.read_array_header_1_0(handle)
    data = _RestrictedUnpickler(handle, encoding="latin1").load()
    stats = data.item() if isinstance(data, np.ndarray) else data
    fingerprints = np.asarray(stats["SNN"]["fps"], dtype=np.uint8)
    return metrics.ReferenceStats(
        fingerprints=fingerprints,
        fragments=Counter(stats["Frag"]["frag"]),
        scaffolds=Counter(stats["Scaf"]["scaf"]),
        fcd=metrics._Gaussian(
            np.asarray(stats["FCD"]["mu"], dtype=np.float64),
            np.asarray(stats["FCD"]["sigma"], dtype=np.float64),
        ),
        size=len(fingerprints),
    )


# ---------------------------------------------------------------------------------------------
# Cached statistics


def _counter_arrays(counter: Counter[str]) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(counter)
    return np.array(keys, dtype=str), np.array([counter[k] for k in keys], dtype=np.int64)


def save_reference_stats(stats: metrics.ReferenceStats, path: str | Path) -> None:
    """Write test-set statistics as a pickle-free .npz (fingerprints bit-packed)."""
    frag_keys, frag_counts = _counter_arrays(stats.fragments)
    scaf_keys, scaf_counts = _counter_arrays(stats.scaffolds)
    arrays: dict[str, np.ndarray] = {
        "version": np.array(CACHE_VERSION),
        "size": np.array(stats.size),
        "fingerprints": np.packbits(stats.fingerprints, axis=1),
        "frag_keys": frag_keys,
        "frag_counts": frag_counts,
        "scaf_keys": scaf_keys,
        "scaf_counts": scaf_counts,
    }
    if stats.fcd is not None:
        arrays["mu"] = stats.fcd.mu
        arrays["sigma"] = stats.fcd.sigma
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def load_reference_stats(path: str | Path) -> metrics.ReferenceStats | None:
    """Statistics saved by `save_reference_stats`, or None if absent or of another version."""
    path = Path(path)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        if int(data["version"]) != CACHE_VERSION:
            return None
        fcd = metrics._Gaussian(data["mu"], data["sigma"]) if "mu" in data.files else None
        bits = np.unpackbits(data["fingerprints"], axis=1)[:, : metrics._FINGERPRINT_BITS]
        return metrics.ReferenceStats(
            fingerprints=bits,
            fragments=Counter(dict(zip(data["frag_keys"].tolist(), data["frag_counts"].tolist()))),
            scaffolds=Counter(dict(zip(data["scaf_keys"].tolist(), data["scaf_counts"].tolist()))),
            fcd=fcd,
            size=int(data["size"]),
        )


@dataclass
class Cache:
    """A folder of statistics keyed by the sha256 of their source file."""

    folder: Path
    n_jobs: int = 1
    device: str = "cpu"
    log: Callable[[str], None] = lambda line: None
    _sha: dict[Path, str] = field(default_factory=dict)

    def sha(self, path: Path) -> str:
        if path not in self._sha:
            self._sha[path] = file_sha256(path)
        return self._sha[path]

    def reference(self, path: Path, precomputed: Path | None = None) -> metrics.ReferenceStats:
        """Test-set statistics of a SMILES file, computed once per file content, or read once
        from the authors' `precomputed` statistics of that file."""
        source = precomputed or path
        cached = self.folder / f"reference-{self.sha(source)[:24]}.npz"
        stats = load_reference_stats(cached)
        if stats is None:
            start = time.monotonic()
            if precomputed is not None:
                self.log(f"reading {precomputed.name} once (cached in {cached})")
                stats = moses_precomputed_stats(precomputed)
            else:
                self.log(f"computing the statistics of {path.name} once (cached in {cached})")
                stats = metrics.reference_stats(
                    load_smiles_file(path), n_jobs=self.n_jobs, device=self.device
                )
            self.folder.mkdir(parents=True, exist_ok=True)
            save_reference_stats(stats, cached)
            self.log(f"  {time.monotonic() - start:.0f} s")
        return stats

    def stored_train(self, path: Path) -> frozenset[str]:
        """The training SMILES as the file stores them (MOSES novelty compares with these)."""
        return frozenset(load_smiles_file(path))

    def canonical_train(self, path: Path) -> frozenset[str]:
        """The training set canonicalised by the installed RDKit, computed once per content."""
        cached = self.folder / f"train-canonical-{self.sha(path)[:24]}-v{CACHE_VERSION}.txt.gz"
        if cached.is_file():
            with gzip.open(cached, "rt", encoding="utf-8") as handle:
                return frozenset(handle.read().split("\n")) - {""}
        start = time.monotonic()
        self.log(f"canonicalising {path.name} once (cached in {cached})")
        canonical = metrics.canonical_train_set(load_smiles_file(path), n_jobs=self.n_jobs)
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(cached.name + ".tmp")
        with gzip.open(tmp, "wt", encoding="utf-8") as handle:
            handle.write("\n".join(sorted(canonical)))
        tmp.replace(cached)
        self.log(f"  {time.monotonic() - start:.0f} s")
        return canonical

    def row(self, key: dict[str, Any]) -> dict[str, float | None] | None:
        path = self.folder / f"row-{_key_hash(key)}.json"
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        return data["row"] if data.get("key") == key else None

    def store_row(self, key: dict[str, Any], row: dict[str, float | None]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"row-{_key_hash(key)}.json"
        path.write_text(json.dumps({"key": key, "row": row}, indent=1))


def _key_hash(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


# ---------------------------------------------------------------------------------------------
# The table


@dataclass
class MosesTable:
    """The rows the `moses` command prints, and how long each part took."""

    samples: int
    seed: int
    rows: dict[str, dict[str, float | None]]
    seconds: dict[str, float]
    artifact_sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "seed": self.seed,
            "artifact_sha256": self.artifact_sha256,
            "rows": self.rows,
            "seconds": self.seconds,
        }


def printed_row(row: dict[str, float | None], *, testsf: bool) -> dict[str, float | None]:
    """A metrics row under the printed names (fcd -> fcd_test, ...), with the TestSF columns
    when the scaffold test set was used."""
    out = {name: row.get(key) for key, name in PRINTED.items()}
    if testsf:
        out.update({name: row.get(key) for key, name in PRINTED_SF.items()})
    return out


def format_line(label: str, row: dict[str, float | None]) -> str:
    """`label name=value ...`, four decimals, `-` for a metric that could not be computed."""
    pairs = " ".join(f"{k}={'-' if v is None else f'{v:.4f}'}" for k, v in row.items())
    return f"{label} {pairs}"


def format_table_lines(table: MosesTable) -> list[str]:
    return [format_line(label, row) for label, row in table.rows.items()]


def moses_table(
    generated: Sequence[str],
    *,
    train_path: Path,
    test_path: Path,
    test_scaffolds_path: Path | None,
    cache: Cache,
    seed: int,
    with_train_row: bool = True,
    precomputed: dict[Path, Path] | None = None,
    train_as_stored: bool = False,
    samples: int | None = None,
) -> MosesTable:
    """MOSES rows for `generated` (raw strings) and a same-size training-set sample, printed names.

    The training-set row is the same metrics of `len(generated)` molecules drawn from the
    training file with `seed` (its novelty is 0 by construction); it is cached by content.
    `precomputed` maps a test file to its authors' statistics file (used instead of computing
    them); `train_as_stored` judges novelty against the training SMILES as the file stores them
    (the MOSES protocol, for a file already canonical) instead of canonicalising it once.
    With no `generated` molecules only the training-set row of `samples` molecules is made
    (to fill the cache ahead of time).
    """
    samples = len(generated) if samples is None else samples
    seconds: dict[str, float] = {}
    precomputed = precomputed or {}
    t0 = time.monotonic()
    test = cache.reference(test_path, precomputed.get(test_path))
    scaffolds = (
        cache.reference(test_scaffolds_path, precomputed.get(test_scaffolds_path))
        if test_scaffolds_path
        else None
    )
    train_set = (
        cache.stored_train(train_path) if train_as_stored else cache.canonical_train(train_path)
    )
    seconds["cached_statistics"] = round(time.monotonic() - t0, 1)

    def evaluate(smiles: list[str]) -> dict[str, float | None]:
        return metrics.moses_metrics(
            smiles,
            train_set,
            test,
            test_scaffolds=scaffolds,
            n_jobs=cache.n_jobs,
            device=cache.device,
            snn_sf=False,
        )

    t0 = time.monotonic()
    testsf = scaffolds is not None
    rows: dict[str, dict[str, float | None]] = {}
    if generated:
        rows["generator"] = printed_row(evaluate(list(generated)), testsf=testsf)
        seconds["generator_metrics"] = round(time.monotonic() - t0, 1)
    if with_train_row:
        key = {
            "version": CACHE_VERSION,
            "train": cache.sha(train_path),
            "test": cache.sha(test_path),
            "test_scaffolds": cache.sha(test_scaffolds_path) if test_scaffolds_path else None,
            "precomputed": sorted(cache.sha(p) for p in precomputed.values()),
            "train_as_stored": train_as_stored,
            "samples": samples,
            "seed": seed,
        }
        t0 = time.monotonic()
        train_row = cache.row(key)
        if train_row is None:
            pool = load_smiles_file(train_path)
            sample = random.Random(seed).sample(pool, min(samples, len(pool)))
            train_row = printed_row(evaluate(sample), testsf=testsf)
            cache.store_row(key, train_row)
        rows["training set"] = train_row
        seconds["training_set_row"] = round(time.monotonic() - t0, 1)
    for name in PUBLISHED_ROWS:
        rows[f"published {name}"] = printed_row(dict(metrics.MOSES_PUBLISHED[name]), testsf=False)
    return MosesTable(samples=samples, seed=seed, rows=rows, seconds=seconds)
