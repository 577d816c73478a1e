"""The treatment models' validation hook: a version scored on the locked held-out trial rows,
the seeded 30 % test part of the trial (``split_trial``, seed 0, stratified by arm x event)
that training evaluates its split fit on; the first N rows (N = MEDAI_HELDOUT_MAX_ITEMS when
locked). Harrell's C-index of the version's risk under each row's own arm."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.conf import settings

from medai_site.registry.catalogue import HeldOutOutputs, HeldOutSet

SPLIT_SEED = 0
TEST_SIZE = 0.3
REFIT_NOTE = (
    "A trained version is refit on every row of its trial after its own held-out evaluation, "
    "so these rows were in its training data and its C-index here is optimistic; the paired "
    "difference still compares versions on the same rows."
)


def treatment_validate(version: Any, source: dict[str, Any] | None) -> HeldOutOutputs:
    """Risk scores of ``version`` on the held-out rows of its trial (C-index); ValueError
    for an outcome model (no survival time) or an unknown trial."""
    from treatment.ml.evaluate import split_trial
    from treatment.ml.models import TreatmentModel
    from treatment.ml.trials import get_trial, load_trial

    trial = (source or {}).get("trial") or (version.training_data or {}).get("trial")
    trial = trial or version.task.removeprefix("treatment.")
    seed = int((source or {}).get("seed", SPLIT_SEED))
    limit = int((source or {}).get("limit") or settings.MEDAI_HELDOUT_MAX_ITEMS)
    try:
        data = load_trial(get_trial(trial))
    except KeyError:
        raise ValueError(f"No trial {trial!r} to hold rows out of.") from None
    _, test_rows = split_trial(data, TEST_SIZE, seed)
    test_rows = test_rows[:limit]
    test = data.subset(test_rows)
    with version.artifact.open("rb") as handle:
        model = TreatmentModel.from_bytes(handle.read(), expected_sha256=version.sha256 or None)
    if model.task != "survival":
        raise ValueError(
            f"{version} predicts {model.outcome}, not survival: it has no held-out C-index."
        )
    risk = model.risk(test.X.to_numpy(dtype=float), test.arm)
    return HeldOutOutputs(
        held_out=HeldOutSet(
            name=f"{trial} held-out rows (30 %, seed {seed})",
            item_ids=tuple(f"{trial}:row:{int(i)}" for i in test_rows),
            source={"trial": trial, "seed": seed, "limit": limit},
        ),
        metric="c_index",
        targets={
            "time": test.time.astype(float).tolist(),
            "event": test.event.astype(bool).tolist(),
        },
        scores=np.asarray(risk, dtype=float).tolist(),
        notes=(REFIT_NOTE,),
    )
