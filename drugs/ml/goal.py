"""Goal-directed design compared the GuacaMol way: does a run's top-k beat the best of the
training set and its own un-optimised prior on the objective the researcher set?

The objective score of a molecule is the trainer's reward without realism: the weighted mean
of the objective terms (QED, SA mapped to 0..1, Lipinski, PAINS, predicted activity clipped to
0..1) with the run's own weights, computed by ``weighted_terms`` — the same function the
GAN's ``RewardModel`` adds realism to. Realism (the discriminator's verdict) is left out: it is
a training signal tied to one discriminator at one moment, not a property of a molecule that a
training-set molecule or another generator's molecule could be scored on. ORGAN's diversity
penalty (copies share a reward) is left out too: every row is scored on unique molecules.

Brown et al., "GuacaMol: Benchmarking Models for de Novo Molecular Design", J. Chem. Inf.
Model. 59:1096 (2019): the top-1/10/100 means and the "best of the training set" baseline.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drugs.ml import chem
from drugs.ml.metrics import internal_diversities

#: The reward terms a researcher weights (the GAN's ``reward_weights`` less realism).
OBJECTIVE_TERMS = ("qed", "sa", "lipinski", "pains", "activity")
#: A run beats a baseline when its top-k mean is strictly greater; k is 100 as in GuacaMol.
TOP_K = 100
#: Fingerprints of the MOSES IntDiv (Morgan radius 2, 1024 bits).
_INTDIV_BITS = 1024
# Molecules parsed and scored at a time.
_SCORE_CHUNK = 2000
# Bump when the stored form or the scoring changes: old cache files are then never read.
_CACHE_FORMAT = 1

ScoreFn = Callable[[list[str]], np.ndarray]
ActivityFn = Callable[[list[str]], Any]


def objective_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """The positive weights of the objective terms (realism and zero weights left out)."""
    return {t: float(weights[t]) for t in OBJECTIVE_TERMS if float(weights.get(t, 0) or 0) > 0}


def weighted_terms(
    smiles: Sequence[str],
    mols: Sequence[Any],
    weights: Mapping[str, float],
    activity_fn: ActivityFn | None,
) -> np.ndarray:
    """Per molecule, the weighted sum of the objective terms (not divided by the weights'
    total; 0 for an invalid molecule, ``mols[i]`` None or empty). The GAN's reward is this plus
    realism, over the total weight."""
    out = np.zeros(len(smiles))
    w = {t: float(weights.get(t, 0) or 0) for t in OBJECTIVE_TERMS}
    valid = np.array([m is not None and m.GetNumAtoms() > 0 for m in mols], dtype=bool)
    for i, mol in enumerate(mols):
        if not valid[i]:
            continue
        if w["qed"] > 0:
            out[i] += w["qed"] * chem.qed_score(mol)
        if w["sa"] > 0:  # SA 1 (easy) .. 10 (hard) mapped to 1 .. 0
            out[i] += w["sa"] * (10 - chem.sa_score(mol)) / 9
        if w["lipinski"] > 0:
            out[i] += w["lipinski"] * float(chem.lipinski_violations(mol) <= 1)
        if w["pains"] > 0:
            out[i] += w["pains"] * float(chem.passes_pains(mol))
    if w["activity"] > 0 and valid.any() and activity_fn is not None:
        idx = np.flatnonzero(valid)
        scores = np.asarray(activity_fn([smiles[i] for i in idx]), dtype=float)
        out[idx] += w["activity"] * np.nan_to_num(np.clip(scores, 0, 1))
    return out


class GoalScorer:
    """The run's objective as a score in [0, 1]: ``weighted_terms`` over the objective
    weights' total; NaN for an invalid SMILES. ``calls``/``scored`` count the work done."""

    def __init__(self, weights: Mapping[str, float], activity_fn: ActivityFn | None = None) -> None:
        self.weights = objective_weights(weights)
        if not self.weights:
            raise ValueError("the objective has no positive weight beyond realism")
        if "activity" in self.weights and activity_fn is None:
            raise ValueError("an activity weight needs an activity model (activity_fn)")
        self.activity_fn = activity_fn
        self.total = sum(self.weights.values())
        self.calls = 0
        self.scored = 0

    def __call__(self, smiles: list[str]) -> np.ndarray:
        self.calls += 1
        self.scored += len(smiles)
        out = np.full(len(smiles), np.nan)
        # In chunks: RDKit molecules of a 100,000-molecule baseline held at once take GBs.
        for start in range(0, len(smiles), _SCORE_CHUNK):
            chunk = list(smiles[start : start + _SCORE_CHUNK])
            mols = [chem.mol_from_smiles(s) if s else None for s in chunk]
            valid = np.array([m is not None and m.GetNumAtoms() > 0 for m in mols], dtype=bool)
            sums = weighted_terms(chunk, mols, self.weights, self.activity_fn)
            out[start : start + len(chunk)] = np.where(valid, sums / self.total, np.nan)
        return out


class KnownScores:
    """``score_fn`` that answers from ``known`` (molecules scored before, e.g. a cached
    baseline) and scores only the others with ``scorer``: the same function for every row."""

    def __init__(self, scorer: ScoreFn, known: Mapping[str, float]) -> None:
        self.scorer, self.known = scorer, known

    def __call__(self, smiles: list[str]) -> np.ndarray:
        out = np.array([self.known.get(s, np.nan) for s in smiles], dtype=float)
        missing = [i for i, s in enumerate(smiles) if s not in self.known]
        if missing:
            out[missing] = self.scorer([smiles[i] for i in missing])
        return out


@dataclass(frozen=True)
class TopK:
    """One row of the comparison. A row with fewer than k scored molecules counts the
    missing ones as 0 (as if they scored nothing), so a small sample cannot win by default."""

    n_scored: int
    top_k_mean: float
    top_10_mean: float
    top_1: float
    intdiv: float | None  # MOSES IntDiv (1 - mean Tanimoto) of the top-k; None under 2
    best: list[tuple[str, float]] = field(default_factory=list)  # the top 5


def _padded_mean(scores: np.ndarray, k: int) -> float:
    return float(scores[:k].sum() / k) if k > 0 else 0.0


def top_k_row(smiles: Sequence[str], score_fn: ScoreFn, k: int = TOP_K) -> TopK:
    """The top-k statistics of ``smiles`` (duplicates counted once, invalid ones dropped)."""
    unique = list(dict.fromkeys(s for s in smiles if s))
    scores = np.asarray(score_fn(unique), dtype=float) if unique else np.zeros(0)
    kept = [(s, float(v)) for s, v in zip(unique, scores) if np.isfinite(v)]
    kept.sort(key=lambda item: (-item[1], item[0]))
    ordered = np.array([v for _, v in kept], dtype=float)
    top = [s for s, _ in kept[:k]]
    intdiv = (
        internal_diversities(chem.morgan_matrix(top, n_bits=_INTDIV_BITS))[0]
        if len(top) > 1
        else None
    )
    return TopK(
        n_scored=len(kept),
        top_k_mean=_padded_mean(ordered, k),
        top_10_mean=_padded_mean(ordered, min(10, k)),
        top_1=float(ordered[0]) if len(ordered) else 0.0,
        intdiv=intdiv,
        best=[(s, round(v, 4)) for s, v in kept[:5]],
    )


@dataclass(frozen=True)
class Comparison:
    """The run's row, each baseline's row and whether the run's top-k mean is strictly
    greater than each baseline's."""

    k: int
    run: TopK
    baselines: dict[str, TopK]
    beats: dict[str, bool]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def top_k_comparison(
    *,
    run_smiles: Sequence[str],
    baselines: Mapping[str, Sequence[str]],
    score_fn: ScoreFn,
    k: int = TOP_K,
) -> Comparison:
    """Score the run's molecules and each baseline's with the one ``score_fn`` and compare
    their top-k (mean, top-10 mean, top-1, IntDiv, molecules scored)."""
    ours = top_k_row(run_smiles, score_fn, k)
    rows = {name: top_k_row(smiles, score_fn, k) for name, smiles in baselines.items()}
    return Comparison(
        k=k,
        run=ours,
        baselines=rows,
        beats={name: ours.top_k_mean > row.top_k_mean for name, row in rows.items()},
    )


# ---------------------------------------------------------------------------------------------
# The training-set baseline: a seeded sample scored once per objective, kept on disk


def baseline_cache_key(
    *,
    weights: Mapping[str, float],
    predictor: str,
    source: str,
    size: int,
    seed: int,
) -> str:
    """What a scored baseline sample depends on: the objective (weights scaled to sum to 1,
    so 0.5/0.25 and 1/0.5 are one objective), the activity predictor's version, the training
    file, the sample size and seed."""
    objective = objective_weights(weights)
    total = sum(objective.values()) or 1.0
    parts = {
        "format": _CACHE_FORMAT,
        "weights": {t: round(w / total, 9) for t, w in sorted(objective.items())},
        "predictor": predictor if "activity" in objective else "",
        "source": source,
        "size": size,
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def seeded_sample(smiles: Sequence[str], size: int, seed: int) -> list[str]:
    """``size`` molecules drawn without replacement with ``random.Random(seed)`` (all of them
    when there are fewer)."""
    if len(smiles) <= size:
        return list(smiles)
    return random.Random(seed).sample(list(smiles), size)


@dataclass(frozen=True)
class ScoredSample:
    """A baseline sample's valid molecules with their objective scores; ``cached`` when it was
    read back instead of scored."""

    scores: dict[str, float]
    n_sampled: int
    cached: bool


def scored_baseline(
    *,
    key: str,
    cache_dir: Path,
    load: Callable[[], list[str]],
    score_fn: ScoreFn,
) -> ScoredSample:
    """The scored sample stored under ``key`` in ``cache_dir``, else ``load()`` it, score it
    with ``score_fn`` and store it (written atomically; an unreadable file is scored again)."""
    path = cache_dir / f"goal-baseline-{key}.json.gz"
    if path.is_file():
        try:
            data = json.loads(gzip.decompress(path.read_bytes()))
            return ScoredSample(
                scores=dict(zip(data["smiles"], data["scores"])),
                n_sampled=int(data["n_sampled"]),
                cached=True,
            )
        except (OSError, ValueError, KeyError, EOFError):
            path.unlink(missing_ok=True)
    sample = load()
    values = np.asarray(score_fn(sample), dtype=float) if sample else np.zeros(0)
    scores = {s: round(float(v), 6) for s, v in zip(sample, values) if np.isfinite(v)}
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    payload = {"smiles": list(scores), "scores": list(scores.values()), "n_sampled": len(sample)}
    partial.write_bytes(gzip.compress(json.dumps(payload).encode(), mtime=0))
    partial.replace(path)
    return ScoredSample(scores=scores, n_sampled=len(sample), cached=False)
