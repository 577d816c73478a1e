"""Batch scoring for hospital IT and evaluators: files or folders through the upload's intake,
de-identification checks, applicability gate and the task's model in service, with no patient
and nothing stored. One line per file:

    FILE: rejected (message)
    FILE: out of scope (reason; a learned-score reason carries its score)
    FILE: normal 0.120, pneumonia 0.880 (predicted pneumonia; OOD score 1.2, threshold 3.4)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from diagnosis.applicability import Assessment, paths_assess
from diagnosis.imaging.contract import InputContract, contract_for_dataset


class Command(BaseCommand):
    help = (
        "Classify DICOM/PNG/JPEG files or folders (recursively) with the task's model in "
        "service, through the upload's checks and the applicability gate; stores nothing."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--task", required=True, help="Registry task, e.g. diagnosis.pneumonia")
        parser.add_argument("paths", nargs="+", type=Path, metavar="FILE_OR_DIR")
        parser.add_argument("--json", action="store_true", help="one JSON object per line")

    def handle(self, *args: Any, **options: Any) -> None:
        from diagnosis.artifacts import load_bundle
        from diagnosis.services import deid_uid_key
        from medai_site.registry.loader import ArtifactCorrupt, NoActiveModel, load_active_model

        paths: list[Path] = options["paths"]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise CommandError(f"No such file or folder: {', '.join(missing)}")
        try:
            loaded = load_active_model(options["task"], load_bundle)
        except (NoActiveModel, ArtifactCorrupt, ValueError) as exc:
            raise CommandError(str(exc)) from None
        bundle = loaded.model
        contract = version_contract(loaded.version, bundle)
        if bundle.ood is None:
            self.stderr.write(
                f"{loaded.version} has no out-of-distribution detector: only the metadata "
                "gate is applied; in-scope results are unchecked."
            )
        for result in paths_assess(
            paths,
            bundle=bundle,
            contract=contract,
            max_bytes=settings.DIAGNOSIS_MAX_FILE_BYTES,
            max_pixels=settings.DIAGNOSIS_MAX_PIXELS,
            # The upload's own de-identification runs and its output is thrown away, so a file
            # the upload would hold back (burned-in annotation) is refused here too.
            deid_key=deid_uid_key(),
        ):
            if options["json"]:
                self.stdout.write(
                    json.dumps({**result.to_dict(), "model_version": str(loaded.version)})
                )
            else:
                self.stdout.write(f"{result.name}: {line_for(result)}")


def version_contract(version: Any, bundle: Any) -> InputContract:
    """The contract stored in the artifact, else the model version's recorded one, else the
    default for the data set it was trained on."""
    stored = bundle.contract or (version.metrics or {}).get("contract")
    if stored:
        return InputContract.from_dict(stored)
    return contract_for_dataset(
        source=_training_source(version),
        channels=bundle.in_channels,
        image_size=bundle.input_size,
    )


def _training_source(version: Any) -> str:
    """The file of the data set the version was trained on; for a version without a recorded
    data set (an imported artifact), the task's most recently registered data set, the one
    the product trains that task on."""
    from diagnosis.models import ImageDataset

    data = version.training_data or {}
    dataset = None
    if data.get("dataset_id"):
        dataset = ImageDataset.objects.filter(pk=data["dataset_id"]).first()
    if dataset is None and data.get("dataset"):
        dataset = ImageDataset.objects.filter(name=data["dataset"]).first()
    if dataset is None:
        dataset = ImageDataset.objects.filter(task=version.task).order_by("-pk").first()
    if dataset is None:
        return ""
    return dataset.path or dataset.name


def line_for(result: Assessment) -> str:
    """The text after "FILE: " for one result."""
    if result.outcome == "rejected":
        return f"rejected ({result.message})"
    if result.outcome == "out_of_scope":
        # A learned-score refusal names its score and threshold in the message itself.
        return f"out of scope ({result.message})"
    probs = ", ".join(f"{c} {p:.3f}" for c, p in (result.probabilities or {}).items())
    if result.ood_score is None:
        check = "not checked for scope: no detector"
    else:
        check = f"OOD score {result.ood_score:.2f}, threshold {result.ood_threshold:.2f}"
    return f"{probs} (predicted {result.predicted_class}; {check})"
