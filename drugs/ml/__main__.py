"""The drug-design models from the command line (no Django).

    python -m drugs.ml bench --samples 2000 --threads 1
    python -m drugs.ml pretrain --out prior.pt --minutes 60 --threads 1 [--resume]
    python -m drugs.ml moses --artifact prior.pt --samples 30000 [--seed N] [--json]

Prints MOSES metrics for (a) a sample of the MOSES training set (the reference row), (b) the
generator after maximum-likelihood pre-training, (c) after adversarial training, with training
times, the random-character baseline, the published rows, and the time the metrics take.
Results go to stdout; bench/drugs_ml_notes.md records a run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
from pathlib import Path

import torch

from drugs.ml import gan, metrics
from drugs.ml.datasets import (
    load_smiles_file,
    moses_10k_dir,
    moses_test_path,
    moses_train_path,
)


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _timed(label: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.monotonic()
    out = fn(*args, **kwargs)
    _out(f"[{time.monotonic() - start:7.1f} s] {label}")
    return out


def bench(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    train = load_smiles_file(moses_10k_dir() / "train10k.csv")
    test = load_smiles_file(moses_10k_dir() / "test_10k.csv")
    n = args.samples
    _out(f"train {len(train)}  test {len(test)}  samples per row {n}  threads {args.threads}")
    ref = _timed(
        "test-set statistics (fingerprints, fragments, scaffolds, ChemNet)",
        metrics.reference_stats,
        test,
    )
    train_set = metrics.canonical_train_set(train)
    rows: dict[str, dict[str, float | None]] = {}

    # (a) a sample of the full MOSES training set, outside the 10k subset, as generated.
    # The whole file: its rows are not in random order, so a head sample is biased.
    pool = load_smiles_file(moses_train_path())
    rng = random.Random(0)
    in_subset = set(train)
    reference_sample = rng.sample([s for s in pool if s not in in_subset], n)
    rows["MOSES train sample"] = _timed(
        f"metrics of {n} training-set molecules",
        metrics.moses_metrics,
        reference_sample,
        train_set,
        ref,
    )

    baseline = gan.random_character_baseline(train, n, seed=0)
    rows["random characters"] = _timed(
        "metrics of the random-character baseline", metrics.moses_metrics, baseline, train_set, ref
    )

    config = gan.GanConfig(
        pretrain_epochs=args.pretrain_epochs,
        adversarial_epochs=args.adversarial_epochs,
        seed=0,
    )
    snapshots: dict[str, gan.GanArtifact] = {}

    def log(stats: gan.EpochStats) -> None:
        _out(
            f"  {stats.phase:11} {stats.epoch:2d} loss {stats.g_loss:.3f} "
            f"d {stats.d_loss if stats.d_loss is not None else '-'} valid {stats.validity:.3f} "
            f"unique {stats.uniqueness:.3f} novel {stats.novelty:.3f} reward "
            f"{stats.mean_reward if stats.mean_reward is not None else '-'} "
            f"({stats.seconds:.0f} s){' COLLAPSE' if stats.collapse_warning else ''}"
        )

    start = time.monotonic()
    artifact = gan.train_gan(
        config, train, on_epoch=log, on_pretrained=lambda a: snapshots.setdefault("pre", a)
    )
    total = time.monotonic() - start
    pre = snapshots["pre"]
    _out(f"pretrain {pre.training_seconds:.0f} s, total {total:.0f} s, {artifact.stopped_reason}")
    for label, model in (("ours: pretrained (MLE)", pre), ("ours: + adversarial", artifact)):
        sampled = model.sample(n, seed=1)
        rows[label] = _timed(f"metrics of {label}", metrics.moses_metrics, sampled, train_set, ref)
    for name in ("CharRNN", "LatentGAN"):
        rows[f"published {name}"] = dict(metrics.MOSES_PUBLISHED[name])
    _out(metrics.format_table(rows))
    _out(json.dumps({"rows": rows, "pretrain_s": pre.training_seconds, "total_s": total}))

    if args.timing:
        for size in args.timing:
            molecules = (pool * (size // len(pool) + 1))[:size]
            _timed(
                f"moses_metrics on {size} molecules (test statistics cached)",
                metrics.moses_metrics,
                molecules,
                train_set,
                ref,
            )


def pretrain_command(args: argparse.Namespace) -> None:
    from drugs.ml import pretrain

    source_path = args.data or moses_train_path()
    smiles = load_smiles_file(source_path, limit=args.limit)
    held_out = load_smiles_file(args.held_out or moses_test_path(), limit=2000)
    config = pretrain.PretrainConfig(
        hidden_dim=args.hidden,
        layers=args.layers,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        steps=args.steps,
        seed=args.seed,
        checkpoint_minutes=args.checkpoint_minutes,
        log_every=args.log_every,
        eval_samples=args.eval_samples,
    )
    log_path = Path(args.log) if args.log else Path(str(args.out) + ".log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a", encoding="utf-8") as handle:

        def log(line: str) -> None:
            stamped = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}"
            handle.write(stamped + "\n")
            handle.flush()
            _out(stamped)

        log("command: python -m drugs.ml " + " ".join(sys.argv[1:]))
        pretrain.pretrain(
            smiles,
            out=args.out,
            config=config,
            minutes=args.minutes,
            device=_device(args.device),
            threads=args.threads,
            resume=args.resume,
            init=gan.GanArtifact.load(args.init) if args.init else None,
            held_out=held_out,
            log=log,
            source=Path(source_path).name + (f" (first {args.limit})" if args.limit else ""),
        )


def moses_command(args: argparse.Namespace) -> None:
    from drugs.ml import benchmark
    from drugs.ml.datasets import REPO_ROOT, molsets_file, moses_test_scaffolds_path

    jobs = args.jobs or os.cpu_count() or 1
    device = _device(args.device)
    cache = benchmark.Cache(
        Path(args.cache_dir) if args.cache_dir else REPO_ROOT / "var" / "cache" / "drugs-moses",
        n_jobs=jobs,
        device=device,
        log=lambda line: sys.stderr.write(f"# {line}\n"),
    )
    if args.artifact is None and not args.prepare:
        raise SystemExit("moses: give --artifact FILE (or --prepare to fill the cache only)")
    start = time.monotonic()
    # One thread for the step-by-step sampling (small operations: more threads only wait on
    # each other, badly so on a busy machine); all of them for the big products after.
    torch.set_num_threads(1)
    generated: list[str] = []
    if not args.prepare:
        artifact = gan.GanArtifact.load(args.artifact)
        generated = artifact.sample(args.samples, seed=args.seed, batch_size=1000, device=device)
    sampling = time.monotonic() - start
    torch.set_num_threads(jobs)
    test_path = Path(args.test) if args.test else moses_test_path()
    scaffolds_path = None
    if not args.no_testsf:
        scaffolds_path = (
            Path(args.test_scaffolds) if args.test_scaffolds else moses_test_scaffolds_path()
        )
    precomputed: dict[Path, Path] = {}
    if not args.recompute_stats:
        # The published protocol: the statistics the MOSES authors computed for their sets.
        for given, path, stats in (
            (args.test, test_path, "moses/dataset/data/test_stats.npz"),
            (args.test_scaffolds, scaffolds_path, "moses/dataset/data/test_scaffolds_stats.npz"),
        ):
            if given is None and path is not None:
                precomputed[path] = molsets_file(stats)
    table = benchmark.moses_table(
        generated,
        train_path=Path(args.train) if args.train else moses_train_path(),
        test_path=test_path,
        test_scaffolds_path=scaffolds_path,
        cache=cache,
        seed=args.seed,
        precomputed=precomputed,
        # MOSES compares with its training file as stored (canonical: 2 in 20,000 of its SMILES
        # differ from the installed RDKit's canonical form); any other file is canonicalised.
        train_as_stored=args.train is None,
        samples=args.samples,
    )
    table.seconds = {"sampling": round(sampling, 1), **table.seconds}
    # CPU time of this process and its worker processes: the wall time on a busy shared
    # machine says little about the cost.
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    table.seconds["cpu"] = round(sum(u.ru_utime + u.ru_stime for u in usage), 1)
    table.artifact_sha256 = benchmark.file_sha256(args.artifact) if args.artifact else ""
    if args.json:
        _out(json.dumps(table.to_dict(), indent=1))
        return
    _out(
        f"# {args.samples} samples, seed {args.seed}, artifact sha256 {table.artifact_sha256}; "
        "metrics against the MOSES test set (TestSF: the scaffold test set); published rows "
        "as printed by the MOSES authors"
    )
    for line in benchmark.format_table_lines(table):
        _out(line)
    _out("# seconds " + " ".join(f"{k}={v}" for k, v in table.seconds.items()))


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m drugs.ml")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bench", help="MOSES metrics of the GAN on the 10k subset")
    b.add_argument("--samples", type=int, default=2000)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--pretrain-epochs", type=int, default=gan.GanConfig.pretrain_epochs)
    b.add_argument("--adversarial-epochs", type=int, default=gan.GanConfig.adversarial_epochs)
    b.add_argument("--timing", type=int, nargs="*", default=[], help="e.g. 10000 30000")
    p = sub.add_parser("pretrain", help="maximum-likelihood prior on the full MOSES train set")
    p.add_argument("--out", required=True, help="the artifact; FILE.ckpt and FILE.log beside it")
    p.add_argument("--minutes", type=float, default=None, help="wall-clock budget")
    p.add_argument("--steps", type=int, default=20_000, help="the schedule's length")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--resume", action="store_true", help="continue from FILE.ckpt")
    p.add_argument(
        "--init",
        default=None,
        help="a prior this command wrote: a further stage from its weights (new optimiser and "
        "schedule), continuing its stream of molecules",
    )
    p.add_argument("--warmup-steps", type=int, default=500)
    p.add_argument("--hidden", type=int, default=384)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--eval-samples", type=int, default=500)
    p.add_argument("--data", default=None, help="SMILES file (default: the MOSES train set)")
    p.add_argument("--held-out", default=None, help="validation SMILES (default: MOSES test)")
    p.add_argument("--limit", type=int, default=None, help="use the first N molecules only")
    p.add_argument("--log", default=None, help="training log (default FILE.log)")
    m = sub.add_parser("moses", help="MOSES metrics of a generator artifact (published protocol)")
    m.add_argument("--artifact", default=None, help="a generator artifact (GanArtifact)")
    m.add_argument(
        "--prepare",
        action="store_true",
        help="only fill the cache: test statistics and the training-set row of --samples",
    )
    m.add_argument("--samples", type=int, default=30_000)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--json", action="store_true")
    m.add_argument("--jobs", type=int, default=None, help="processes/threads (default: all)")
    m.add_argument("--device", default="auto")
    m.add_argument("--cache-dir", default=None, help="default <repo>/var/cache/drugs-moses")
    m.add_argument("--no-testsf", action="store_true", help="skip the scaffold test set")
    m.add_argument(
        "--recompute-stats",
        action="store_true",
        help="compute the MOSES test statistics with the installed RDKit instead of reading "
        "the authors' precomputed ones",
    )
    m.add_argument("--train", default=None, help="training SMILES (default: MOSES train)")
    m.add_argument("--test", default=None, help="test SMILES (default: MOSES test)")
    m.add_argument("--test-scaffolds", default=None, help="default: MOSES test_scaffolds")
    args = parser.parse_args()
    if args.command == "bench":
        bench(args)
    elif args.command == "pretrain":
        pretrain_command(args)
    elif args.command == "moses":
        moses_command(args)


if __name__ == "__main__":
    main()
