"""Validation hooks of the drug-design models.

Property predictors: the locked held-out set is a deterministic scaffold split of the
endpoint's MoleculeNet file (``scaffold_holdout``: whole Bemis-Murcko scaffolds, 20 % by hash),
first N molecules in file order (N = MEDAI_HELDOUT_MAX_ITEMS when locked); AUROC for a
classifier, RMSE for a regressor. Training cross-validates over scaffold groups and then
refits on every molecule, so the held-out molecules were in the final fit: said on the result.

The generator: its held-out set is the MOSES test set (the shipped 10k sample, first N); a
generator's outputs are its own samples, not predictions for those molecules, so the
comparison is unpaired (bootstrap over each version's samples). Headline: the share of valid
molecules; novelty against the MOSES training sample and FCD against the held-out molecules
are reported beside it (single values, no interval: FCD is a set statistic).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.conf import settings

from medai_site.registry.catalogue import HeldOutOutputs, HeldOutSet

SAMPLE_SEED = 0
REFIT_NOTE = (
    "The predictor is refit on every molecule of its endpoint after cross-validation, so "
    "these held-out molecules were in its final fit and its score here is optimistic; the "
    "paired difference still compares versions on the same molecules."
)


def predictor_validate(version: Any, source: dict[str, Any] | None) -> HeldOutOutputs:
    """Predictions of a property predictor on its endpoint's scaffold held-out molecules."""
    from drugs import sources
    from drugs.artifacts import load_predictor_bytes
    from drugs.ml.predictors import ENDPOINTS, load_endpoint, scaffold_holdout
    from drugs.selectors import endpoint_of

    endpoint = (source or {}).get("endpoint") or endpoint_of(version)
    if endpoint not in ENDPOINTS:
        raise ValueError(f"{version} predicts {endpoint!r}, which has no shipped data set.")
    limit = int((source or {}).get("limit") or settings.MEDAI_HELDOUT_MAX_ITEMS)
    spec = ENDPOINTS[endpoint]
    shipped = sources.moleculenet_dir()
    smiles, y, task_type = load_endpoint(
        endpoint, shipped if (shipped / spec.file).is_file() else None
    )
    rows = np.flatnonzero(scaffold_holdout(smiles))[:limit]
    held_smiles = [smiles[i] for i in rows]
    with version.artifact.open("rb") as handle:
        artifact = load_predictor_bytes(handle.read())
    predictions = artifact.predict(held_smiles)
    held = HeldOutSet(
        name=f"{endpoint} scaffold held-out molecules",
        item_ids=tuple(held_smiles),
        source={"endpoint": endpoint, "limit": limit, "rule": "sha256(scaffold) < 20 %"},
    )
    if task_type == "classification":
        return HeldOutOutputs(
            held_out=held,
            metric="auroc",
            targets={"labels": [int(v) for v in y[rows]]},
            scores=[float(p) for p in predictions],
            notes=(REFIT_NOTE,),
        )
    values = y[rows].astype(float)
    spread = float(values.std())
    return HeldOutOutputs(
        held_out=held,
        metric="rmse",
        targets={"y": values.tolist()},
        scores=[float(p) for p in predictions],
        floor=spread,
        floor_reason=(
            f"RMSE below {spread:.3f} {spec.units}, the held-out values' standard deviation "
            "(what always predicting their mean scores)"
        ),
        notes=(REFIT_NOTE,),
    )


def generator_validate(version: Any, source: dict[str, Any] | None) -> HeldOutOutputs:
    """The generator's own seeded samples (valid or not) against the MOSES test molecules."""
    from drugs import sources
    from drugs.artifacts import load_generator
    from drugs.ml.datasets import load_smiles_file
    from drugs.ml.metrics import canonical_train_set, fraction_valid, moses_metrics

    limit = int((source or {}).get("limit") or settings.MEDAI_HELDOUT_MAX_ITEMS)
    test = load_smiles_file(sources.moses_test_10k(), limit=limit)
    train = load_smiles_file(sources.moses_train_10k())
    generator = load_generator(version)
    samples = generator.sample(limit, seed=SAMPLE_SEED)
    valid = [1 if fraction_valid([s]) else 0 for s in samples]
    metrics = moses_metrics(samples, canonical_train_set(train), test, n_jobs=1)
    extra = {
        "novelty (vs MOSES train 10k)": metrics.get("novelty"),
        "FCD (vs held-out molecules)": metrics.get("fcd"),
        "unique valid": len({s for s, ok in zip(samples, valid, strict=True) if ok}),
    }
    return HeldOutOutputs(
        held_out=HeldOutSet(
            name="MOSES test set (shipped 10k sample)",
            item_ids=tuple(test),
            source={"limit": limit, "file": sources.moses_test_10k().name},
        ),
        metric="validity",
        targets={},
        scores=valid,
        paired=False,
        extra={k: v for k, v in extra.items() if v is not None},
        notes=(
            f"Unpaired: each version is judged on its own {limit} samples (seed {SAMPLE_SEED}), "
            "resampled independently; the held-out molecules are the reference for FCD.",
        ),
    )
