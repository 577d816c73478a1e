"""Command line: train on a .npz or image folder, write the artifact and its metrics JSON.

    python -m diagnosis.ml data/medmnist/pneumoniamnist.npz --out var/pneumonia.pt \
        --class-names normal pneumonia
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from diagnosis.imaging.contract import contract_for_dataset
from diagnosis.ml.artifact import save_artifact
from diagnosis.ml.data import ImageDataset, load_folder, load_npz
from diagnosis.ml.train import EpochReport, TrainConfig, train


def main(argv: list[str] | None = None) -> int:
    """Train with TrainConfig defaults (overridable by --set key=json), save, print the metrics."""
    parser = argparse.ArgumentParser(prog="python -m diagnosis.ml", description=__doc__)
    parser.add_argument("data", type=Path, help=".npz file or folder of class sub-folders")
    parser.add_argument("--out", type=Path, required=True, help="artifact path to write")
    parser.add_argument("--class-names", nargs="+", default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="override a TrainConfig field",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    config = TrainConfig.from_dict({**TrainConfig().to_dict(), **overrides})

    dataset: ImageDataset = (
        load_npz(args.data, class_names=args.class_names)
        if args.data.suffix == ".npz"
        else load_folder(args.data)
    )

    def report(r: EpochReport) -> None:
        sys.stdout.write(
            f"epoch {r.epoch:3d}/{r.epochs} train_loss {r.train_loss:.4f} val_loss {r.val_loss:.4f}"
            f" val_auc {r.val_auc:.4f} val_acc {r.val_accuracy:.4f} {r.elapsed_s:6.1f}s"
            f"{'  *' if r.is_best else ''}\n"
        )
        sys.stdout.flush()

    result = train(dataset, config, report, device=args.device)
    bundle = result.to_bundle()
    bundle.contract = contract_for_dataset(
        source=dataset.source, channels=dataset.channels, image_size=dataset.image_size
    ).to_dict()
    sha = save_artifact(bundle, args.out)
    metrics = result.metrics()
    metrics["artifact_sha256"] = sha
    metrics["data"] = dataset.describe()
    metrics["contract"] = bundle.contract
    args.out.with_suffix(".metrics.json").write_text(json.dumps(metrics, allow_nan=False))
    summary = {"best_epoch": result.best_epoch, "sha256": sha, **result.test.summary()}
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
