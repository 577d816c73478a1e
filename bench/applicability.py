"""Applicability bench: how often a model's checks flag in- and out-of-distribution images.

    python bench/applicability.py --task diagnosis.pneumonia [--artifact FILE] \\
        --in-dist NPZ --ood-dir DIR [--ood-dir DIR ...]

Without --artifact it first trains the product's default model for the task (TrainConfig
defaults, as bin/run's first training run) on the in-distribution set's training split. Each
--ood-dir is read recursively through the product's own intake and decoding (PNG, JPEG and
DICOM in any transfer syntax the upload accepts); files the intake refuses are not images and
are counted on stderr only. Every image then goes through the metadata gate (unless --no-gate)
and the learned out-of-distribution score, as the product will apply them. Standard output has
exactly one line per set:

    <set>: images N, flagged K, rate R

the in-distribution line first, scored on the test split and named after the .npz file.
Details (test AUC of everything vs of what is scored, rejected files, the detector) go to
stderr.

--make-sets DIR builds the product's own out-of-distribution sets from what is offline (NEMA
WG-04, pydicom's and pydicom-data's test files, synthetic corruptions of the in-distribution
test split) into DIR and uses its sub-folders when no --ood-dir is given.
--method/--quantile/--holdout/--scaling refit the detector of the model on the in-distribution
training split (threshold on its validation split) to compare options on one trained model
without retraining it; --refit-ood refits with the product's current defaults (e.g. an artifact fitted by an older
default), and --save-artifact keeps the refitted artifact. The stderr notes include
"val-synthetic": the same corruptions made from the validation split, the validation-side
evidence for choosing between detector options (the test-derived sets only report).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diagnosis.applicability import Assessment, files_under, paths_assess
from diagnosis.imaging.contract import InputContract, contract_for_dataset
from diagnosis.ml.artifact import ModelBundle, load_artifact, save_artifact
from diagnosis.ml.corruptions import SYNTHETIC, synthetic_image
from diagnosis.ml.data import ImageDataset, load_npz
from diagnosis.ml.metrics import macro_auc
from diagnosis.ml.predict import predict
from diagnosis.ml.train import TrainConfig, ood_fit_for, train

# The product's tasks and the class names its data sets are registered with.
TASK_CLASS_NAMES: dict[str, tuple[str, ...]] = {"diagnosis.pneumonia": ("normal", "pneumonia")}
# The MedMNIST collection whose default input contract a task's model has (the data set the
# product registers for it); other tasks get the contract of their .npz's name.
TASK_COLLECTIONS: dict[str, str] = {"diagnosis.pneumonia": "pneumoniamnist"}
# The upload's caps (README: MEDAI_SCAN_MAX_MB, MEDAI_SCAN_MAX_PIXELS).
MAX_BYTES = int(float(os.environ.get("MEDAI_SCAN_MAX_MB", "200")) * 1_000_000)
MAX_PIXELS = int(os.environ.get("MEDAI_SCAN_MAX_PIXELS", "400000000"))


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, build or load the model, print one line per set."""
    parser = argparse.ArgumentParser(prog="bench/applicability.py", description=__doc__)
    parser.add_argument("--task", required=True)
    parser.add_argument("--artifact", type=Path, help="a model artifact; default: train one")
    parser.add_argument("--in-dist", type=Path, required=True, help="MedMNIST-style .npz")
    parser.add_argument("--ood-dir", type=Path, action="append", default=[])
    parser.add_argument("--make-sets", type=Path, help="build the product's OOD sets here")
    parser.add_argument("--no-gate", action="store_true", help="learned score only")
    parser.add_argument("--method", help="refit the detector with this method")
    parser.add_argument("--quantile", type=float, help="refit with this validation quantile")
    parser.add_argument(
        "--holdout", type=float, help="refit with this fraction of validation for the threshold"
    )
    parser.add_argument("--scaling", help="refit with this component scaling (std, tail)")
    parser.add_argument(
        "--refit-ood", action="store_true", help="refit the detector with the product defaults"
    )
    parser.add_argument(
        "--save-artifact", type=Path, help="keep the trained or refitted artifact here"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=JSON", help="TrainConfig override"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    warnings.filterwarnings("ignore")

    try:
        dataset = load_npz(args.in_dist, class_names=TASK_CLASS_NAMES.get(args.task))
    except (OSError, ValueError) as exc:
        parser.error(f"--in-dist: {exc}")
    if args.make_sets:
        made = make_sets(args.make_sets, dataset)
        if not args.ood_dir:
            args.ood_dir = made
    if not args.ood_dir:
        parser.error("give at least one --ood-dir (or --make-sets DIR)")
    for folder in args.ood_dir:
        if not folder.exists():
            parser.error(f"--ood-dir {folder}: no such file or folder")

    bundle = _model(args, dataset, parser)
    contract = _contract(bundle, dataset, args.task)
    if bundle.ood is None:
        _note("the model has no out-of-distribution detector: only the metadata gate applies")
    else:
        _note(f"detector: {json.dumps(bundle.ood.summary())}")
    _note(f"contract: {contract.summary()}; gate {'off' if args.no_gate else 'on'}")
    if bundle.ood is not None:
        _note(f"val-synthetic: {json.dumps(val_synthetic_rates(bundle, dataset))}")

    test_images = [img for img in dataset.test_images]
    scored = predict(bundle, test_images)
    flags = np.array([p.in_scope is False for p in scored])
    _line(args.in_dist.name, len(flags), int(flags.sum()))
    probs = np.stack([p.probabilities for p in scored])
    labels = dataset.test_labels
    kept = ~flags
    auc_all = macro_auc(labels, probs)
    auc_kept = macro_auc(labels[kept], probs[kept]) if kept.any() else float("nan")
    _note(f"{args.in_dist.name}: test AUC all {auc_all:.4f}, scored only {auc_kept:.4f}")

    for folder in args.ood_dir:
        results = assess_folder(folder, bundle=bundle, contract=contract, gate=not args.no_gate)
        images = [r for r in results if r.outcome != "rejected"]
        flagged = [r for r in images if r.outcome == "out_of_scope"]
        _line(folder.name, len(images), len(flagged))
        rejected = len(results) - len(images)
        gated = [r for r in flagged if r.gate is not None and not r.gate.fits]
        by_gate = len(gated) if not args.no_gate else 0
        _note(
            f"{folder.name}: {rejected} file(s) refused by intake; flagged by gate {by_gate}, "
            f"by learned score {len(flagged) - by_gate}"
        )
    return 0


def val_synthetic_rates(bundle: ModelBundle, dataset: ImageDataset) -> dict[str, float]:
    """Flag rate of the learned score on each SYNTHETIC corruption of (up to 300) validation
    images, plus the validation split itself: evidence that never touches the test split."""
    rng = np.random.default_rng(1)
    val = dataset.val_images[:300]
    rates = {"val": _flag_rate(bundle, list(dataset.val_images))}
    for name in SYNTHETIC:
        rates[name] = _flag_rate(
            bundle, [synthetic_image(name, img, rng, i) for i, img in enumerate(val)]
        )
    return {k: round(v, 4) for k, v in rates.items()}


def _flag_rate(bundle: ModelBundle, images: list[np.ndarray]) -> float:
    scored = predict(bundle, images, tta=False)
    return float(np.mean([p.in_scope is False for p in scored]))


def assess_folder(
    folder: Path, *, bundle: ModelBundle, contract: InputContract | None, gate: bool
) -> list[Assessment]:
    """Every file under `folder` through intake, gate and model, as the product reads it."""
    return list(
        paths_assess(
            [folder],
            bundle=bundle,
            contract=contract,
            max_bytes=MAX_BYTES,
            max_pixels=MAX_PIXELS,
            use_gate=gate,
        )
    )


def make_sets(root: Path, dataset: ImageDataset) -> list[Path]:
    """Write the product's out-of-distribution sets under `root`, one folder each; returns the
    folders that have at least one file."""
    root.mkdir(parents=True, exist_ok=True)
    folders: list[Path] = []
    nema = _nema_dir()
    if nema is not None:
        target = root / "nema-wg04"
        target.mkdir(exist_ok=True)
        for path in sorted(nema.iterdir()):
            if path.is_file():
                shutil.copyfile(path, target / path.name)
        folders.append(target)
    folders.append(_pydicom_sets(root))
    rng = np.random.default_rng(0)
    test = dataset.test_images
    for name in SYNTHETIC:
        target = root / f"synthetic-{name}"
        target.mkdir(exist_ok=True)
        for i in range(min(100, len(test))):
            image = synthetic_image(name, test[i], rng, i)
            Image.fromarray(image).save(target / f"{name}-{i:03d}.png")
        folders.append(target)
    return [f for f in folders if any(files_under(f))]


def _nema_dir() -> Path | None:
    """The NEMA WG-04 files: MEDAI_NEMA_WG04_DIR, else datasets/dicom/nema-wg04 under
    MEDAI_SHARED_DIR or a shared/ folder beside the repository (or beside its worktree)."""
    if os.environ.get("MEDAI_NEMA_WG04_DIR"):
        candidates = [Path(os.environ["MEDAI_NEMA_WG04_DIR"])]
    else:
        repo = Path(__file__).resolve().parents[1]
        shared = [repo.parent / "shared", repo.parent.parent / "shared"]
        if os.environ.get("MEDAI_SHARED_DIR"):
            shared.insert(0, Path(os.environ["MEDAI_SHARED_DIR"]))
        candidates = [s / "datasets" / "dicom" / "nema-wg04" for s in shared]
    return next((c for c in candidates if c.is_dir()), None)


def _pydicom_sets(root: Path) -> Path:
    """pydicom's and pydicom-data's offline test files, except the chest radiographs (they are
    what the model reads, not out of distribution); those go to a folder of their own."""
    import pydicom
    from pydicom.data import get_testdata_files

    target = root / "pydicom-testdata"
    chest = root / "pydicom-chest-radiographs"
    target.mkdir(exist_ok=True)
    seen: set[str] = set()
    for name in sorted(get_testdata_files("**/*")):
        path = Path(name)
        if not path.is_file() or path.suffix.lower() in {".py", ".txt", ".json", ".gz", ".bz2"}:
            continue
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True, force=True)
            modality = str(header.get("Modality", "")).upper()
            part = str(header.get("BodyPartExamined", "")).upper()
        except Exception:  # noqa: BLE001 - not DICOM: intake will say so
            modality, part = "", ""
        folder = chest if modality in {"CR", "DX"} and part in {"CHEST", ""} else target
        folder.mkdir(exist_ok=True)
        stem = path.name if path.name not in seen else f"{path.parent.name}-{path.name}"
        seen.add(stem)
        shutil.copyfile(path, folder / stem)
    return target


def _model(
    args: argparse.Namespace, dataset: ImageDataset, parser: argparse.ArgumentParser
) -> ModelBundle:
    """Load --artifact or train the default model; refit the detector when asked."""
    if args.artifact:
        try:
            bundle = load_artifact(args.artifact)
        except (OSError, ValueError) as exc:
            parser.error(f"--artifact: {exc}")
        config = TrainConfig.from_dict(bundle.config)
    else:
        overrides = {k: json.loads(v) for k, _, v in (s.partition("=") for s in args.set)}
        config = TrainConfig.from_dict({**TrainConfig().to_dict(), **overrides})
        _note(f"training the default model of {args.task} on {args.in_dist.name} ...")
        result = train(dataset, config)
        bundle = result.to_bundle()
        bundle.contract = _contract(bundle, dataset, args.task).to_dict()
    refit = args.refit_ood or any(
        v is not None for v in (args.method, args.quantile, args.holdout, args.scaling)
    )
    if refit:
        base = TrainConfig() if args.refit_ood else config
        try:
            config = TrainConfig.from_dict(
                {
                    **config.to_dict(),
                    "ood_method": args.method or base.ood_method,
                    "ood_quantile": args.quantile or base.ood_quantile,
                    "ood_holdout": base.ood_holdout if args.holdout is None else args.holdout,
                    "ood_scaling": args.scaling or base.ood_scaling,
                }
            )
        except ValueError as exc:
            parser.error(str(exc))
        bundle.ood = ood_fit_for(bundle.model, dataset, bundle.normalisation, config)
        bundle.config = {**bundle.config, **config.to_dict()}
    if args.save_artifact and (refit or not args.artifact):
        save_artifact(bundle, args.save_artifact)
    return bundle


def _contract(bundle: ModelBundle, dataset: ImageDataset, task: str) -> InputContract:
    if bundle.contract:
        return InputContract.from_dict(bundle.contract)
    return contract_for_dataset(
        source=dataset.source,
        channels=dataset.channels,
        image_size=dataset.image_size,
        collection=TASK_COLLECTIONS.get(task),
    )


def _line(name: str, images: int, flagged: int) -> None:
    rate = flagged / images if images else 0.0
    sys.stdout.write(f"{name}: images {images}, flagged {flagged}, rate {rate:.4f}\n")
    sys.stdout.flush()


def _note(text: str) -> None:
    sys.stderr.write(f"# {text}\n")
    sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
