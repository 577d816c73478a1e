"""Generator and predictor artifacts: bytes in the model registry, files for the ml layer,
and the versions in service loaded from this worker's cache."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from medai_site.jobs.exceptions import JobError
from medai_site.registry.loader import load_active_model
from medai_site.registry.models import ModelVersion


def _via_file(content: bytes, load: Callable[[Path], Any], suffix: str = ".bin") -> Any:
    """Artifacts are loaded from a path by the ml layer; the registry hands over bytes."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"artifact{suffix}"
        path.write_bytes(content)
        return load(path)


def artifact_bytes(save: Callable[[Path], Any], suffix: str = ".bin") -> bytes:
    """The bytes an ml artifact's ``save(path)`` writes, for the registry."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"artifact{suffix}"
        save(path)
        return path.read_bytes()


def load_generator(version: ModelVersion) -> Any:
    """A generator version's GanArtifact (JobError if its file is missing)."""
    from drugs.ml.gan import GanArtifact

    try:
        with version.artifact.open("rb") as handle:
            content = handle.read()
    except (OSError, ValueError):
        raise JobError(f"The artifact file of {version} is missing.") from None
    return _via_file(content, GanArtifact.load)


def generator_from_bytes(content: bytes) -> Any:
    """A generator's GanArtifact from its registry bytes (ValueError for other bytes)."""
    from drugs.ml.gan import GanArtifact

    return _via_file(content, GanArtifact.load)


def load_predictor_bytes(content: bytes) -> Any:
    """A predictor's PredictorArtifact from its registry bytes."""
    from drugs.ml.predictors import PredictorArtifact

    return _via_file(content, PredictorArtifact.load)


def active_predictor_models() -> list[tuple[str, ModelVersion, Any]]:
    """(endpoint, version, artifact) of each predictor in service, from this worker's cache."""
    from drugs.selectors import active_predictors, endpoint_of

    found = []
    for version in active_predictors():
        loaded = load_active_model(version.task, load_predictor_bytes)
        found.append((endpoint_of(version), loaded.version, loaded.model))
    return found


def activity_predictor(endpoint: str) -> tuple[ModelVersion, Callable[[list[str]], Any]] | None:
    """The version in service of ``endpoint``'s predictor and its prediction as the GAN's
    activity reward in [0, 1] (for an endpoint where lower is better, such as toxicity, lower
    predictions score higher); None for no endpoint, JobError if none is in service."""
    from drugs.ml.predictors import ENDPOINTS

    if not endpoint:
        return None
    spec = ENDPOINTS.get(endpoint)
    for name, version, model in active_predictor_models():
        if name == endpoint and spec is not None:
            return version, partial(model.reward, higher_is_better=spec.higher_is_better)
    raise JobError(
        f"No {endpoint} predictor is in service, so the activity objective cannot be scored. "
        "Train one on the drug-design page first."
    )


def activity_function(endpoint: str) -> Callable[[list[str]], Any] | None:
    """The activity reward of ``endpoint``'s predictor in service (``activity_predictor``)."""
    found = activity_predictor(endpoint)
    return found[1] if found is not None else None
