"""Drug design: (1) molecules generated per second, and valid molecules per second, by the bare
generator vs the full product path — sample service (run row, job) -> Celery worker on the ml
queue (generator loaded from the registry, sampling, RDKit properties, predictions, MOSES
metrics, chemical-space map) -> stored molecules; (2) the time to compute the MOSES metrics of
10k and 30k generated molecules.

Runs on the embedded default in a temporary folder (SQLite, filesystem broker, one real worker
process) on the CPU. The generator is the shipped prior (data/models/drugs-generator-prior/,
registered as the product registers it; its sample runs compare with the full MOSES training
set, canonicalised once by the first, warm-up run) or, with --generator trained, one trained
here (a few epochs on the MOSES 10k subset; --epochs and --hidden). Both paths draw the same
number of molecules; prints times, rates and the ratios, among them issue #18's: the worker
path's valid molecules per second over the bare `GanArtifact.sample` + validity check's
(goal >= 0.8).

    .venv/bin/python bench/drugs.py [--n 2000] [--generator prior|trained]
        [--metrics-sizes 10000 30000] [--skip-generation] [--skip-metrics] [--broker URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="molecules per generation")
    parser.add_argument("--metrics-sizes", type=int, nargs="*", default=[10_000, 30_000])
    parser.add_argument(
        "--generator",
        choices=("prior", "trained"),
        default="prior",
        help="the shipped prior (default) or a generator trained here",
    )
    parser.add_argument("--epochs", type=int, default=3, help="pre-training epochs")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--train", type=int, default=5000, help="training molecules")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (bare and worker)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--test-size", type=int, default=10_000, help="MOSES test molecules")
    parser.add_argument(
        "--var",
        default="",
        help="reuse this folder (its cached MOSES test statistics) instead of a fresh one",
    )
    parser.add_argument("--skip-generation", action="store_true", help="metrics timing only")
    parser.add_argument("--skip-metrics", action="store_true", help="generation rates only")
    parser.add_argument(
        "--broker",
        default="",
        help="broker URL (default: the embedded filesystem broker, which polls once a second)",
    )
    return parser.parse_args()


from harness import celery_worker, embedded_site, wait_for_job  # noqa: E402  (bench/ is on sys.path)


def best_of(repeats: int, fn):
    """(fastest seconds, last result) of ``repeats`` runs."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    args = parse()
    embedded_site(
        var=Path(args.var) if args.var else None,
        broker=args.broker,
        MEDAI_TORCH_THREADS=str(args.threads),
        MEDAI_DRUGS_METRICS_TEST_SIZE=str(args.test_size),
    )
    import torch

    from drugs import sources
    from drugs.artifacts import artifact_bytes
    from drugs.ml.datasets import load_smiles_file
    from drugs.ml.gan import GanArtifact, GanConfig, train_gan

    torch.set_num_threads(args.threads)
    train = load_smiles_file(sources.moses_train_10k())
    if args.generator == "prior":
        from drugs.prior import ARTIFACT_NAME, prior_dir

        content = (prior_dir() / ARTIFACT_NAME).read_bytes()
        described = f"the shipped prior ({prior_dir().name})"
    else:
        config = GanConfig(
            pretrain_epochs=args.epochs, adversarial_epochs=0, hidden_dim=args.hidden, seed=0
        )
        start = time.perf_counter()
        trained = train_gan(config, train[: args.train])
        content = artifact_bytes(trained.save)
        described = (
            f"{args.epochs} pre-training epochs on {args.train:,} MOSES molecules, hidden "
            f"{args.hidden} (trained in {time.perf_counter() - start:.0f} s)"
        )
    with tempfile.NamedTemporaryFile(suffix=".bin") as handle:
        handle.write(content)
        handle.flush()
        artifact = GanArtifact.load(handle.name)  # the object a worker holds
    print(
        f"Drug design on CPU ({args.threads} torch thread(s)); generator: {described}; "
        f"broker {args.broker or 'embedded filesystem'}; {args.test_size:,} MOSES test molecules",
        flush=True,
    )
    if not args.skip_generation:
        generation(args, artifact, content, train)
    if not args.skip_metrics:
        metrics_timing(args, artifact, train)


def generation(args: argparse.Namespace, artifact, content: bytes, train: list[str]) -> None:
    """Molecules per second: the bare generator vs the product path through a worker."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from drugs.design import evaluate_sample
    from drugs.ml.chem import canonical_smiles
    from drugs.models import GENERATOR_TASK, DesignRun, MoleculeDataset
    from drugs.services import MOSES_10K_NAME, dataset_builtin_ensure, design_run_sample_start
    from medai_site.registry.services import model_version_register

    # (a) the bare model.
    sample_s, sampled = best_of(args.repeats, lambda: artifact.sample(args.n, seed=1))
    valid = [c for c in (canonical_smiles(s) for s in sampled) if c]
    check_s, _ = best_of(1, lambda: [canonical_smiles(s) for s in sampled])
    evaluate_s, _ = best_of(1, lambda: evaluate_sample(sampled, train, []))

    # (b) the product path with a real worker process.
    call_command("migrate", verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username="bench")
    dataset_builtin_ensure(user=user)
    if args.generator == "prior":
        from drugs.prior import generator_prior_ensure

        version, _ = generator_prior_ensure(user=user, validate=False)
    else:
        dataset = MoleculeDataset.objects.get(name=MOSES_10K_NAME)
        version = model_version_register(
            task=GENERATOR_TASK,
            artifact=content,
            created_by=user,
            training_data={"dataset_id": dataset.pk},
        )

    def through_worker() -> DesignRun:
        run = design_run_sample_start(version=version, n_samples=args.n, user=user)
        wait_for_job(run.job, timeout=3600)
        run.refresh_from_db()
        return run

    with celery_worker():
        # Warm: imports, the test-set statistics (then on disk) and the training-set row.
        warm_start = time.perf_counter()
        through_worker()
        warm_s = time.perf_counter() - warm_start
        product_s, run = best_of(args.repeats, through_worker)

    print(f"{args.n:,} molecules per generation ({len(valid) / len(sampled):.1%} valid):")
    print(
        f"  (a) artifact.sample                  : {sample_s:8.2f} s  "
        f"({args.n / sample_s:8.0f} generated/s, {len(valid) / sample_s:8.0f} valid/s)"
    )
    print(f"  (a) + RDKit validity check         : {sample_s + check_s:8.2f} s")
    print(
        f"  (a) + properties and novelty       : {sample_s + evaluate_s:8.2f} s  "
        f"({len(valid) / (sample_s + evaluate_s):8.0f} valid/s)"
    )
    print(
        f"  (b) product path (service+worker)  : {product_s:8.2f} s  "
        f"({run.n_sampled / product_s:8.0f} generated/s, {run.n_valid / product_s:8.0f} valid/s;"
        f" first run {warm_s:.1f} s)"
    )
    print(f"  ratio (b)/(a) sampling only        : {product_s / sample_s:7.1f}")
    print(f"  ratio (b)/(a) sampling + evaluation: {product_s / (sample_s + evaluate_s):7.1f}")
    bare_valid_rate = len(valid) / (sample_s + check_s)
    print(
        f"  valid/s (b) / valid/s (a + validity): {run.n_valid / product_s / bare_valid_rate:6.2f}"
        "  (issue #18: >= 0.8)"
    )


def metrics_timing(args: argparse.Namespace, artifact, train: list[str]) -> None:
    """Seconds to compute the MOSES metrics of 10k and 30k generated molecules, as the job
    computes them (test-set statistics already cached)."""
    from drugs.design import _reference_sets, reference_statistics
    from drugs.ml.metrics import moses_metrics

    test_smiles, scaffold_smiles = _reference_sets()
    start = time.perf_counter()
    test = reference_statistics(test_smiles)
    scaffolds = reference_statistics(scaffold_smiles)
    print(
        f"MOSES test-set statistics, {len(test_smiles):,} + {len(scaffold_smiles):,} molecules "
        f"(on disk after the first run): {time.perf_counter() - start:.1f} s",
        flush=True,
    )
    moses_metrics(artifact.sample(100, seed=3), train, test, test_scaffolds=scaffolds)
    rows = []
    for size in args.metrics_sizes:
        molecules = artifact.sample(size, seed=2)
        seconds, _ = best_of(
            1, lambda m=molecules: moses_metrics(m, train, test, test_scaffolds=scaffolds)
        )
        rows.append((size, seconds))
        print(f"  MOSES metrics of {size:>6,} molecules: {seconds:7.1f} s", flush=True)
    if len(rows) == 2:
        print(f"  ratio {rows[1][0]:,}/{rows[0][0]:,}: {rows[1][1] / rows[0][1]:.2f}")


if __name__ == "__main__":
    main()
