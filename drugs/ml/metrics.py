"""MOSES metrics for generated molecules, and the published MOSES rows to compare with.

Definitions follow molecularsets/moses `moses/metrics/metrics.py` (Polykovskiy et al., Front.
Pharmacol. 2020), reimplemented on the current RDKit, numpy and torch (the molsets package itself
does not import on them):

- valid: fraction of generated strings that RDKit parses into a molecule.
- unique@k: distinct canonical SMILES among the first k valid molecules (None with fewer than k).
- novelty: fraction of the distinct valid molecules that are not in the training set.
- intdiv / intdiv2: 1 - mean pairwise Tanimoto similarity (p=1) or its root mean square (p=2)
  over the valid molecules, self-pairs included, Morgan r=2 1024-bit fingerprints.
- filters: fraction of valid molecules passing the MOSES filters (MCF + PAINS, allowed atoms,
  no charges, no ring of 8 or more atoms).
- frag / scaff: cosine similarity of BRICS-fragment and Bemis-Murcko-scaffold (>= 2 rings) counts
  between the valid generated molecules and the test set.
- snn: mean over valid generated molecules of the Tanimoto similarity to the nearest test molecule.
- fcd: Frechet ChemNet Distance to the test set (ChemNet weights from the fcd_torch wheel).
"""

from __future__ import annotations

import importlib.metadata
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from multiprocessing import get_context
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from rdkit import Chem, rdBase
from rdkit.Chem import rdFingerprintGenerator
from rdkit.Chem.Scaffolds import MurckoScaffold
from scipy import linalg

from drugs.ml.chem import passes_moses_filters

METRIC_KEYS = (
    "valid",
    "unique@1k",
    "unique@10k",
    "novelty",
    "intdiv",
    "intdiv2",
    "filters",
    "frag",
    "scaff",
    "snn",
    "fcd",
)
# Which way is better, for display.
HIGHER_IS_BETTER = {key: key != "fcd" for key in METRIC_KEYS}

# MOSES README (molecularsets/moses, commit ffbc4dba), 30,000 samples per model against the full
# MOSES test set (176k molecules), mean of 3 runs. The "Train" row is the authors' reference
# row for a sample of the training set; its novelty of 1.0 is as printed there.
MOSES_PUBLISHED: dict[str, dict[str, float]] = {
    "Train (MOSES)": {
        "valid": 1.0,
        "unique@1k": 1.0,
        "unique@10k": 1.0,
        "fcd": 0.008,
        "snn": 0.6419,
        "frag": 1.0,
        "scaff": 0.9907,
        "intdiv": 0.8567,
        "intdiv2": 0.8508,
        "filters": 1.0,
        "novelty": 1.0,
    },
    "HMM": {
        "valid": 0.076,
        "unique@1k": 0.623,
        "unique@10k": 0.5671,
        "fcd": 24.4661,
        "snn": 0.3876,
        "frag": 0.5754,
        "scaff": 0.2065,
        "intdiv": 0.8466,
        "intdiv2": 0.8104,
        "filters": 0.9024,
        "novelty": 0.9994,
    },
    "NGram": {
        "valid": 0.2376,
        "unique@1k": 0.974,
        "unique@10k": 0.9217,
        "fcd": 5.5069,
        "snn": 0.5209,
        "frag": 0.9846,
        "scaff": 0.5302,
        "intdiv": 0.8738,
        "intdiv2": 0.8644,
        "filters": 0.9582,
        "novelty": 0.9694,
    },
    "Combinatorial": {
        "valid": 1.0,
        "unique@1k": 0.9983,
        "unique@10k": 0.9909,
        "fcd": 4.2375,
        "snn": 0.4514,
        "frag": 0.9912,
        "scaff": 0.4445,
        "intdiv": 0.8732,
        "intdiv2": 0.8666,
        "filters": 0.9557,
        "novelty": 0.9878,
    },
    "CharRNN": {
        "valid": 0.9748,
        "unique@1k": 1.0,
        "unique@10k": 0.9994,
        "fcd": 0.0732,
        "snn": 0.6015,
        "frag": 0.9998,
        "scaff": 0.9242,
        "intdiv": 0.8562,
        "intdiv2": 0.8503,
        "filters": 0.9943,
        "novelty": 0.8419,
    },
    "AAE": {
        "valid": 0.9368,
        "unique@1k": 1.0,
        "unique@10k": 0.9973,
        "fcd": 0.5555,
        "snn": 0.6081,
        "frag": 0.991,
        "scaff": 0.9022,
        "intdiv": 0.8557,
        "intdiv2": 0.8499,
        "filters": 0.996,
        "novelty": 0.7931,
    },
    "VAE": {
        "valid": 0.9767,
        "unique@1k": 1.0,
        "unique@10k": 0.9984,
        "fcd": 0.099,
        "snn": 0.6257,
        "frag": 0.9994,
        "scaff": 0.9386,
        "intdiv": 0.8558,
        "intdiv2": 0.8498,
        "filters": 0.997,
        "novelty": 0.6949,
    },
    "JTN-VAE": {
        "valid": 1.0,
        "unique@1k": 1.0,
        "unique@10k": 0.9996,
        "fcd": 0.3954,
        "snn": 0.5477,
        "frag": 0.9965,
        "scaff": 0.8964,
        "intdiv": 0.8551,
        "intdiv2": 0.8493,
        "filters": 0.976,
        "novelty": 0.9143,
    },
    "LatentGAN": {
        "valid": 0.8966,
        "unique@1k": 1.0,
        "unique@10k": 0.9968,
        "fcd": 0.2968,
        "snn": 0.5371,
        "frag": 0.9986,
        "scaff": 0.8867,
        "intdiv": 0.8565,
        "intdiv2": 0.8505,
        "filters": 0.9735,
        "novelty": 0.9498,
    },
    # Not in the current README: ORGAN's row from its earlier version (commit 0447c9fa, 2019),
    # the one the issue quotes. That table printed no novelty or IntDiv2; its protocol (sample
    # and test-set sizes) may differ from the rows above, so compare it loosely.
    "ORGAN": {
        "valid": 0.8731,
        "unique@1k": 0.9910,
        "unique@10k": 0.9260,
        "fcd": 1.5748,
        "snn": 0.4745,
        "frag": 0.9897,
        "scaff": 0.7843,
        "intdiv": 0.8526,
        "filters": 0.9934,
    },
}

_FINGERPRINT_BITS = 1024  # MOSES: Morgan radius 2, 1024 bits
_SPARSE_BLOCK = 256  # generated molecules per sparse product
_POOL_MIN = 2000  # fewer molecules than this are not worth starting worker processes
_CHEMNET_PAD = 350  # fcd_torch's fixed input length; the padding changes the activations
_CHEMNET_BATCH = 256


# ---------------------------------------------------------------------------------------------
# Per-molecule features, computed in one pass (optionally in worker processes)


@dataclass
class _Features:
    canonical: list[str]  # one per valid molecule, duplicates kept
    fingerprints: np.ndarray  # (n_valid, 1024) uint8
    fragments: Counter[str]
    scaffolds: Counter[str]
    filters: np.ndarray  # (n_valid,) bool
    n_input: int


@cache
def _morgan_generator() -> rdFingerprintGenerator.FingerprintGenerator64:
    return rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=_FINGERPRINT_BITS)


def _scaffold(mol: Chem.Mol, min_rings: int = 2) -> str | None:
    try:
        scaffold = MurckoScaffold.GetScaffoldForMol(mol)
    except (ValueError, RuntimeError):
        return None
    if scaffold.GetRingInfo().NumRings() < min_rings:
        return None
    return Chem.MolToSmiles(scaffold) or None


def _fragments(mol: Chem.Mol) -> list[str]:
    return Chem.MolToSmiles(Chem.FragmentOnBRICSBonds(mol)).split(".")


def _features_chunk(args: tuple[list[str], bool, bool]) -> _Features:
    smiles, full, with_filters = args
    generator = _morgan_generator()
    canonical: list[str] = []
    fps: list[np.ndarray] = []
    fragments: Counter[str] = Counter()
    scaffolds: Counter[str] = Counter()
    filters: list[bool] = []
    with rdBase.BlockLogs():
        for s in smiles:
            mol = Chem.MolFromSmiles(s) if s else None
            if mol is None or mol.GetNumAtoms() == 0:
                continue
            canonical.append(Chem.MolToSmiles(mol))
            if not full:
                continue
            fps.append(generator.GetFingerprintAsNumPy(mol).astype(np.uint8))
            fragments.update(_fragments(mol))
            scaffold = _scaffold(mol)
            if scaffold is not None:
                scaffolds[scaffold] += 1
            if with_filters:
                filters.append(passes_moses_filters(mol))
    matrix = np.stack(fps) if fps else np.zeros((0, _FINGERPRINT_BITS), np.uint8)
    return _Features(
        canonical, matrix, fragments, scaffolds, np.asarray(filters, bool), len(smiles)
    )


def _features(
    smiles: Sequence[str], n_jobs: int = 1, *, full: bool = True, with_filters: bool = True
) -> _Features:
    """Canonical SMILES of the valid molecules and, if `full`, their fingerprints, fragments,
    scaffolds and (if `with_filters`, the slowest part: ~500 SMARTS each) filter results."""
    smiles = list(smiles)
    if n_jobs <= 1 or len(smiles) < _POOL_MIN:
        return _features_chunk((smiles, full, with_filters))
    size = math.ceil(len(smiles) / (n_jobs * 4))
    chunks = [(smiles[i : i + size], full, with_filters) for i in range(0, len(smiles), size)]
    with get_context("fork").Pool(n_jobs) as pool:
        parts = pool.map(_features_chunk, chunks)
    fragments: Counter[str] = Counter()
    scaffolds: Counter[str] = Counter()
    for part in parts:
        fragments.update(part.fragments)
        scaffolds.update(part.scaffolds)
    return _Features(
        [c for part in parts for c in part.canonical],
        np.concatenate([part.fingerprints for part in parts]),
        fragments,
        scaffolds,
        np.concatenate([part.filters for part in parts]),
        len(smiles),
    )


# ---------------------------------------------------------------------------------------------
# Similarities
#
# Tanimoto similarity from the intersection counts c = |a & b|: c / (|a| + |b| - c). A Morgan
# fingerprint has ~40 of its 1024 bits set, so the counts come from a sparse (int16) product,
# ~25x fewer operations than the dense float product, and exact: the similarities are then
# divided in float32 as before, so SNN is bit-for-bit the dense computation's.


@dataclass(frozen=True)
class FingerprintIndex:
    """Reference fingerprints for nearest-neighbour similarity: a sparse int16 matrix with its
    rows sorted by bit count, and where each run of equal counts starts. Within a run, the
    largest intersection gives the largest Tanimoto similarity, so only one value per run and
    generated molecule is ever divided."""

    matrix: sp.csr_matrix
    starts: np.ndarray  # first row of each run of equal bit counts
    run_counts: np.ndarray  # (runs,) float32: the bit count of each run

    @classmethod
    def of(cls, fingerprints: np.ndarray) -> FingerprintIndex:
        counts = fingerprints.sum(1, dtype=np.int64)
        order = np.argsort(counts, kind="stable")
        counts = counts[order]
        starts = np.flatnonzero(np.diff(counts)) + 1 if len(counts) else np.zeros(0, np.int64)
        starts = np.concatenate([[0], starts]).astype(np.int64) if len(counts) else starts
        matrix = sp.csr_matrix(fingerprints[order], dtype=np.int16)
        return cls(matrix, starts, counts[starts].astype(np.float32))

    def __len__(self) -> int:
        return int(self.matrix.shape[0])


def _tanimoto(both: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Tanimoto similarity in float32 from intersection counts (rows x columns) and the bit
    counts of both sides; two empty fingerprints count as identical (MOSES: 0/0 -> 1)."""
    both = both.astype(np.float32, copy=False)
    union = rows[:, None] + columns[None, :] - both
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = both / union
    if not union.all():
        sim[union == 0] = 1.0
    return sim


def max_tanimoto(index: FingerprintIndex, generated: np.ndarray) -> np.ndarray:
    """Per generated row (uint8 bits): the Tanimoto similarity of its nearest reference row."""
    out = np.zeros(len(generated), dtype=np.float64)
    if len(generated) == 0 or len(index) == 0:
        return out
    for i in range(0, len(generated), _SPARSE_BLOCK):
        block = generated[i : i + _SPARSE_BLOCK]
        both = index.matrix @ np.ascontiguousarray(block.T, dtype=np.int16)  # (n_ref, block)
        best = np.maximum.reduceat(both, index.starts, axis=0)  # (runs, block)
        sim = _tanimoto(best, index.run_counts, block.sum(1, dtype=np.int64).astype(np.float32))
        out[i : i + len(block)] = sim.max(0)
    return out


def _pair_sums(
    fingerprints: np.ndarray, lo: int, hi: int, matrix: sp.csr_matrix | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For molecules lo:hi: the sums of their Tanimoto similarities (and of the squares) with
    every molecule of `fingerprints` (`matrix`: the same as a sparse int16 matrix), self-pairs
    included."""
    if matrix is None:
        matrix = sp.csr_matrix(fingerprints, dtype=np.int16)
    counts = fingerprints.sum(1, dtype=np.int64).astype(np.float32)
    sum1 = np.zeros(hi - lo, dtype=np.float64)
    sum2 = np.zeros(hi - lo, dtype=np.float64)
    for i in range(lo, hi, _SPARSE_BLOCK):
        j = min(i + _SPARSE_BLOCK, hi)
        both = matrix @ np.ascontiguousarray(fingerprints[i:j].T, dtype=np.int16)
        sim = _tanimoto(both, counts, counts[i:j])
        sum1[i - lo : j - lo] = sim.sum(0, dtype=np.float64)
        np.multiply(sim, sim, out=sim)
        sum2[i - lo : j - lo] = sim.sum(0, dtype=np.float64)
    return sum1, sum2


def _diversities(n: int, sum1: np.ndarray, sum2: np.ndarray) -> tuple[float, float]:
    return float(1 - (sum1 / n).mean()), float(1 - np.sqrt(sum2 / n).mean())


def internal_diversities(fingerprints: np.ndarray) -> tuple[float, float]:
    """(IntDiv, IntDiv2): 1 - mean pairwise Tanimoto similarity, and 1 - the mean over
    molecules of the root mean square of their similarities (self-pairs included)."""
    n = len(fingerprints)
    if n == 0:
        return 1.0, 1.0
    return _diversities(n, *_pair_sums(fingerprints, 0, n))


def _cosine(a: Counter[str], b: Counter[str]) -> float | None:
    if not a or not b:
        return None
    dot = sum(count * b.get(key, 0) for key, count in a.items())
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return float(dot / norm)


# ---------------------------------------------------------------------------------------------
# FCD


@cache
def _chemnet() -> torch.nn.Module | None:
    """ChemNet from the fcd_torch wheel (weights shipped inside it), or None if not installed."""
    try:
        from fcd_torch.utils import load_imported_model

        path = importlib.metadata.distribution("fcd_torch").locate_file(
            "fcd_torch/ChemNet_v0.13_pretrained.pt"
        )
        config = torch.load(str(path), map_location="cpu", weights_only=True)
    except (ImportError, importlib.metadata.PackageNotFoundError, FileNotFoundError):
        return None
    return load_imported_model(config).eval()


def chemnet_available() -> bool:
    return _chemnet() is not None


def chemnet_activations(smiles: Sequence[str], device: str = "cpu") -> np.ndarray:
    """ChemNet penultimate activations (n, 512) for canonical SMILES, as fcd_torch computes them."""
    from fcd_torch.utils import get_one_hot

    model = _chemnet()
    if model is None:
        raise RuntimeError("fcd_torch is not installed: FCD needs its ChemNet weights")
    model = model.to(device)
    out: list[np.ndarray] = []
    with torch.no_grad():
        for i in range(0, len(smiles), _CHEMNET_BATCH):
            batch = np.stack([get_one_hot(s, _CHEMNET_PAD) for s in smiles[i : i + _CHEMNET_BATCH]])
            x = torch.from_numpy((batch / batch.shape[2]).astype(np.float32)).to(device)
            out.append(model(x.transpose(1, 2)).cpu().numpy())
    model.to("cpu")
    return np.concatenate(out) if out else np.zeros((0, 512), np.float32)


@dataclass(frozen=True)
class _Gaussian:
    mu: np.ndarray
    sigma: np.ndarray


def _gaussian(activations: np.ndarray) -> _Gaussian:
    return _Gaussian(activations.mean(0), np.cov(activations.astype(np.float64).T))


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(a: _Gaussian, b: _Gaussian) -> float:
    """Frechet distance between two Gaussians (Dowson & Landau; the quantity fcd_torch computes).

    tr sqrt(S_a S_b) is taken as the sum of the square roots of the eigenvalues of the
    symmetric S_a^1/2 S_b S_a^1/2 (similar to S_a S_b): two symmetric eigendecompositions
    instead of a general matrix square root, which is exact for covariance matrices, stable
    when they are singular (fewer molecules than ChemNet's 512 features) and far faster.
    """
    diff = a.mu - b.mu
    root = _psd_sqrt(np.asarray(a.sigma, dtype=np.float64))
    middle = root @ np.asarray(b.sigma, dtype=np.float64) @ root
    trace_covmean = float(np.sqrt(np.clip(linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum())
    return float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * trace_covmean)


# ---------------------------------------------------------------------------------------------
# Reference statistics (test set), cached because every evaluation reuses them


@dataclass
class ReferenceStats:
    """What the test-set comparisons need from the test set, computed once."""

    fingerprints: np.ndarray
    fragments: Counter[str]
    scaffolds: Counter[str]
    fcd: _Gaussian | None
    size: int
    _index: FingerprintIndex | None = field(default=None, repr=False, compare=False)

    def index(self) -> FingerprintIndex:
        """The fingerprints as a FingerprintIndex (built on first use)."""
        if self._index is None:
            self._index = FingerprintIndex.of(self.fingerprints)
        return self._index


_REFERENCE_CACHE: dict[int, ReferenceStats] = {}
_TRAIN_CACHE: dict[int, frozenset[str]] = {}


def reference_stats(
    test: Sequence[str], *, n_jobs: int = 1, device: str = "cpu", with_fcd: bool = True
) -> ReferenceStats:
    """Statistics of a test set (cached per process by content)."""
    key = hash((tuple(test), with_fcd))
    if key in _REFERENCE_CACHE:
        return _REFERENCE_CACHE[key]
    features = _features(test, n_jobs, with_filters=False)
    gaussian = None
    if with_fcd and chemnet_available() and len(features.canonical) >= 2:
        gaussian = _gaussian(chemnet_activations(features.canonical, device))
    stats = ReferenceStats(
        features.fingerprints, features.fragments, features.scaffolds, gaussian, len(test)
    )
    if len(_REFERENCE_CACHE) >= 4:
        _REFERENCE_CACHE.pop(next(iter(_REFERENCE_CACHE)))
    _REFERENCE_CACHE[key] = stats
    return stats


def canonical_train_set(train: Sequence[str], *, n_jobs: int = 1) -> frozenset[str]:
    """Canonical SMILES of the training set (cached per process by content).

    Canonicalised with the installed RDKit so that novelty does not count a training molecule as
    new merely because an older RDKit wrote it differently.
    """
    key = hash(tuple(train))
    if key not in _TRAIN_CACHE:
        if len(_TRAIN_CACHE) >= 2:
            _TRAIN_CACHE.pop(next(iter(_TRAIN_CACHE)))
        _TRAIN_CACHE[key] = frozenset(_features(train, n_jobs, full=False).canonical)
    return _TRAIN_CACHE[key]


# ---------------------------------------------------------------------------------------------
# The metrics


def fraction_valid(generated: Sequence[str]) -> float | None:
    if not generated:
        return None
    return len(_features(generated, full=False).canonical) / len(generated)


def unique_at(canonical_valid: Sequence[str], k: int) -> float | None:
    """Distinct molecules among the first k valid ones; None when fewer than k are valid."""
    if len(canonical_valid) < k or k <= 0:
        return None
    return len(set(canonical_valid[:k])) / k


def novelty(canonical_valid: Sequence[str], train_canonical: frozenset[str]) -> float | None:
    distinct = set(canonical_valid)
    if not distinct:
        return None
    return len(distinct - train_canonical) / len(distinct)


# The pairwise and ChemNet work of one evaluation, in worker processes: what the tasks share
# is set here before the pool forks (copy-on-write), so only index ranges travel to them.
_SHARED: dict[str, Any] = {}
_CHEMNET_CHUNK = 1024  # molecules per ChemNet task
_PAIR_CHUNK = 1024  # generated molecules per SNN / IntDiv task


def _one_thread() -> None:
    torch.set_num_threads(1)


def _pairwise_task(task: tuple[str, int, int, int]) -> tuple[tuple[str, int, int, int], Any]:
    kind, reference, lo, hi = task
    if kind == "chemnet":
        return task, chemnet_activations(_SHARED["smiles"][lo:hi])
    if kind == "snn":
        return task, max_tanimoto(_SHARED["indexes"][reference], _SHARED["fps"][lo:hi])
    return task, _pair_sums(_SHARED["fps"], lo, hi, _SHARED["fps_sparse"])


def _pairwise(
    fingerprints: np.ndarray,
    chemnet_smiles: list[str] | None,
    indexes: list[FingerprintIndex],
    *,
    n_jobs: int,
    device: str,
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray | None, list[np.ndarray]]:
    """IntDiv's pair sums, ChemNet activations of `chemnet_smiles` (if given) and the nearest
    similarities against each index, split into tasks over `n_jobs` processes (one torch thread
    each: on a few cores, whole processes beat threads fighting inside one LSTM)."""
    n = len(fingerprints)
    tasks: list[tuple[str, int, int, int]] = []
    in_pool_chemnet = chemnet_smiles is not None and device == "cpu"
    if in_pool_chemnet:
        assert chemnet_smiles is not None
        size = len(chemnet_smiles)
        tasks += [
            ("chemnet", 0, i, min(i + _CHEMNET_CHUNK, size)) for i in range(0, size, _CHEMNET_CHUNK)
        ]
    for r in range(len(indexes)):
        tasks += [("snn", r, i, min(i + _PAIR_CHUNK, n)) for i in range(0, n, _PAIR_CHUNK)]
    tasks += [("intdiv", 0, i, min(i + _PAIR_CHUNK, n)) for i in range(0, n, _PAIR_CHUNK)]
    _SHARED.update(
        fps=fingerprints,
        fps_sparse=sp.csr_matrix(fingerprints, dtype=np.int16),
        smiles=chemnet_smiles,
        indexes=indexes,
    )
    try:
        if n_jobs <= 1 or n < _POOL_MIN:
            done = [_pairwise_task(task) for task in tasks]
        else:
            _chemnet()  # loaded once, before the fork
            with get_context("fork").Pool(n_jobs, initializer=_one_thread) as pool:
                done = list(pool.imap_unordered(_pairwise_task, tasks))
    finally:
        _SHARED.clear()
    parts = {task: value for task, value in done}
    sum1 = np.concatenate([parts[t][0] for t in tasks if t[0] == "intdiv"])
    sum2 = np.concatenate([parts[t][1] for t in tasks if t[0] == "intdiv"])
    nearest = [
        np.concatenate([parts[t] for t in tasks if t[0] == "snn" and t[1] == r])
        for r in range(len(indexes))
    ]
    activations = None
    if in_pool_chemnet:
        activations = np.concatenate([parts[t] for t in tasks if t[0] == "chemnet"])
    elif chemnet_smiles is not None:
        activations = chemnet_activations(chemnet_smiles, device)
    return (sum1, sum2), activations, nearest


def moses_metrics(
    generated: list[str],
    train: list[str] | frozenset[str],
    test: list[str] | ReferenceStats | None = None,
    *,
    test_scaffolds: list[str] | ReferenceStats | None = None,
    n_jobs: int = 1,
    device: str = "cpu",
    with_fcd: bool = True,
    snn_sf: bool = True,
) -> dict[str, float | None]:
    """The MOSES metrics of `generated` (raw strings, valid or not), keyed by METRIC_KEYS.

    `train` may be a frozenset of canonical SMILES (from `canonical_train_set`) to skip the
    canonicalisation. frag / scaff / snn / fcd need `test` (a list or `reference_stats(test)`)
    and are None without it; fcd is None without ChemNet (fcd_torch) or with `with_fcd=False`.
    Given `test_scaffolds`, the same four are added against it as frag_sf, scaff_sf, snn_sf,
    fcd_sf (the MOSES "TestSF" columns); `snn_sf=False` skips snn_sf, the costly one (a
    product with every scaffold-test fingerprint).
    """
    result: dict[str, float | None] = dict.fromkeys(METRIC_KEYS)
    if not generated:
        return result
    features = _features(generated, n_jobs)
    valid = features.canonical
    result["valid"] = len(valid) / len(generated)
    if not valid:
        return result
    result["unique@1k"] = unique_at(valid, 1000)
    result["unique@10k"] = unique_at(valid, 10_000)
    train_set = train if isinstance(train, frozenset) else canonical_train_set(train, n_jobs=n_jobs)
    result["novelty"] = novelty(valid, train_set)
    result["filters"] = float(features.filters.mean())

    def stats_of(reference: list[str] | ReferenceStats) -> ReferenceStats:
        if isinstance(reference, ReferenceStats):
            return reference
        return reference_stats(reference, n_jobs=n_jobs, device=device, with_fcd=with_fcd)

    test_stats = stats_of(test) if test is not None else None
    sf_stats = stats_of(test_scaffolds) if test_scaffolds is not None else None
    with_snn = [
        (stats, name)
        for stats, name, wanted in ((test_stats, "snn", True), (sf_stats, "snn_sf", snn_sf))
        if stats is not None and wanted and len(stats.fingerprints)
    ]
    fcd_wanted = with_fcd and chemnet_available() and len(valid) >= 2 and test is not None
    pair_sums, activations, nearest = _pairwise(
        features.fingerprints,
        valid if fcd_wanted else None,
        [stats.index() for stats, _ in with_snn],
        n_jobs=n_jobs,
        device=device,
    )
    result["intdiv"], result["intdiv2"] = _diversities(len(valid), *pair_sums)
    gen_gaussian = _gaussian(activations) if activations is not None else None
    snn_values = {name: float(values.mean()) for (_, name), values in zip(with_snn, nearest)}

    def against(stats: ReferenceStats, suffix: str) -> dict[str, float | None]:
        fcd = None
        if gen_gaussian is not None and stats.fcd is not None:
            fcd = frechet_distance(gen_gaussian, stats.fcd)
        return {
            f"frag{suffix}": _cosine(stats.fragments, features.fragments),
            f"scaff{suffix}": _cosine(stats.scaffolds, features.scaffolds),
            f"snn{suffix}": snn_values.get(f"snn{suffix}"),
            f"fcd{suffix}": fcd,
        }

    if test_stats is not None:
        result.update(against(test_stats, ""))
    if sf_stats is not None:
        result.update(against(sf_stats, "_sf"))
    return result


def uniqueness_collapse(
    history: Sequence[float | None],
    *,
    min_uniqueness: float = 0.5,
    max_relative_drop: float = 0.3,
) -> bool:
    """True when sampled uniqueness signals mode collapse.

    Collapse: the latest uniqueness is below `min_uniqueness`, or it has fallen by more than
    `max_relative_drop` (relative) from the best seen so far. Missing values (no valid sample)
    are skipped.
    """
    values = [float(v) for v in history if v is not None and not math.isnan(v)]
    if not values:
        return False
    latest, best = values[-1], max(values)
    if latest < min_uniqueness:
        return True
    return best > 0 and (best - latest) / best > max_relative_drop


def format_table(
    rows: dict[str, dict[str, float | None]], keys: Sequence[str] = METRIC_KEYS
) -> str:
    """A plain-text table of metric rows (for notes, logs and the command line)."""
    header = f"{'':24}" + "".join(f"{k:>11}" for k in keys)
    lines = [header]
    for name, row in rows.items():
        cells = []
        for k in keys:
            v = row.get(k)
            cells.append(f"{'-':>11}" if v is None else f"{v:>11.4f}")
        lines.append(f"{name[:24]:24}" + "".join(cells))
    return "\n".join(lines)
