"""Every write in drugs: data sets (uploads and built-ins), design runs and their molecules,
predictor training, and researchers' shortlists."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from drugs.models import (
    GENERATOR_TASK,
    DesignRun,
    GeneratedMolecule,
    MoleculeDataset,
    ShortlistEntry,
    predictor_task,
)
from medai_site.core.media import media_writes
from medai_site.core.uploads import upload_size_problem
from medai_site.jobs.models import Job
from medai_site.jobs.services import job_create

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# The start of an upload is parsed in the request, so a file that is not molecules at all is
# refused on the form at once; the worker parses the whole file.
SNIFF_BYTES = 256 * 1024
# Invalid lines kept for the report (all of them are counted).
MAX_REPORTED_ERRORS = 1000
MAX_SAMPLES = 30_000
MIN_SAMPLES = 100


class DatasetRejected(ValueError):
    """An upload that cannot become a data set; the message is for the researcher, ``field``
    names the form field it is about."""

    def __init__(self, message: str, field: str = "file") -> None:
        super().__init__(message)
        self.field = field


def _check_gzip_bound(data: bytes, filename: str) -> None:
    """Inflate a gzip upload in chunks, discarding the output, and refuse a gzip bomb (more
    than the import would accept) or a damaged stream before anything is stored."""
    from drugs.ml.chem import MAX_DECOMPRESSED_BYTES

    total = 0
    try:
        # GzipFile reads every member (a bomb can be many concatenated members) and checks
        # each member's CRC and length trailer at its end.
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
            while chunk := handle.read(1024 * 1024):
                total += len(chunk)
                if total > MAX_DECOMPRESSED_BYTES:
                    raise DatasetRejected(
                        f"{filename} expands to more than {MAX_DECOMPRESSED_BYTES // 2**20} MiB "
                        f"when decompressed ({len(data):,} bytes compressed); it was not "
                        "stored. Split it or upload a smaller file."
                    )
    except EOFError:
        raise DatasetRejected(
            f"{filename} is an incomplete gzip file: it ends before its compressed data does."
        ) from None
    except (OSError, zlib.error) as exc:
        raise DatasetRejected(f"{filename} is not a valid gzip file ({exc}).") from None


def _sniff_head(data: bytes, filename: str) -> tuple[bytes, str]:
    """The first SNIFF_BYTES of the (decompressed) file cut at a record boundary, and the
    file name the parser should read it as."""
    name = filename
    if filename.lower().endswith(".gz"):
        name = filename[:-3]
        try:
            data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, SNIFF_BYTES)
        except zlib.error:
            raise DatasetRejected("The file ends in .gz but is not gzip-compressed.") from None
    if len(data) <= SNIFF_BYTES and not filename.lower().endswith(".gz"):
        return data, name
    head = data[:SNIFF_BYTES]
    marker = b"$$$$" if name.lower().endswith((".sdf", ".sd")) else b"\n"
    cut = head.rfind(marker)
    return (head[: cut + len(marker)] if cut >= 0 else head), name


def dataset_check_upload(*, data: bytes, filename: str, smiles_column: str | None) -> int:
    """Parse the start of an upload; DatasetRejected (with the reason, and the first bad lines
    when no line is a molecule) if it cannot become a data set. Returns molecules seen."""
    from drugs.ml.chem import MoleculeFileError, parse_molecule_file

    if not data:
        raise DatasetRejected("The file is empty.")
    if problem := upload_size_problem(len(data), cap=settings.DRUGS_MAX_UPLOAD_BYTES):
        raise DatasetRejected(problem)
    if filename.lower().endswith(".gz"):
        _check_gzip_bound(data, filename)
    head, name = _sniff_head(data, filename)
    try:
        parsed = parse_molecule_file(head, name, smiles_column=smiles_column or None)
    except MoleculeFileError as exc:
        raise DatasetRejected(str(exc)) from None
    if not parsed.molecules:
        shown = "; ".join(f"line {e.line}: {e.message}" for e in parsed.errors[:3])
        raise DatasetRejected(
            "No line of the file is a valid molecule" + (f" ({shown})." if shown else ".")
        )
    return len(parsed.molecules)


def dataset_upload(
    *,
    name: str,
    data: bytes,
    filename: str,
    user: User,
    smiles_column: str = "",
    description: str = "",
) -> MoleculeDataset:
    """Check an uploaded SMILES/CSV/SDF file (DatasetRejected with the reason when it is not a
    molecule file or its name is taken), store it and queue the import job that parses every
    line, keeps the valid molecules and reports the invalid ones by line."""
    name = name.strip()
    if not name:
        raise DatasetRejected("Give the data set a name.", field="name")
    if MoleculeDataset.objects.filter(name=name).exists():
        raise DatasetRejected(f"A data set named “{name}” already exists.", field="name")
    dataset_check_upload(data=data, filename=filename, smiles_column=smiles_column)
    try:
        # No upload file, not even a partial one, outlives a failed store (ENOSPC, a rollback).
        with media_writes() as writes, transaction.atomic():
            dataset = MoleculeDataset(
                name=name,
                source=MoleculeDataset.Source.UPLOAD,
                status=MoleculeDataset.Status.IMPORTING,
                description=description.strip(),
                original_name=filename[:255],
                smiles_column=smiles_column.strip()[:100],
                sha256=hashlib.sha256(data).hexdigest(),
                created_by=user,
            )
            writes.save(dataset.upload, "upload.bin", ContentFile(data))
            dataset.save()
            dataset.job = job_create(
                kind="drugs.dataset_import",
                owner=user,
                title=f"Import molecules: {name}",
                params={"dataset_id": dataset.pk},
                target=dataset,
            )
            dataset.save(update_fields=["job"])
    except IntegrityError:
        # Another upload took the name after the check above: the unique name decides
        # (media_writes has already removed the file stored for this one).
        raise DatasetRejected(f"A data set named “{name}” already exists.", field="name") from None
    return dataset


@dataclass
class ImportedMolecules:
    """What the import job hands to dataset_import_store."""

    rows: list[tuple[str, str, dict[str, Any]]]
    value_columns: list[str]
    n_lines: int
    n_duplicates: int
    errors: list[dict[str, Any]]
    n_invalid: int

    @classmethod
    def from_parsed(cls, parsed: Any) -> ImportedMolecules:
        """A parsed molecule file's rows, the first of each canonical SMILES kept."""
        seen: set[str] = set()
        rows = []
        for molecule in parsed.molecules:
            if molecule.smiles in seen:
                continue
            seen.add(molecule.smiles)
            rows.append((molecule.smiles, molecule.name, dict(molecule.values)))
        return cls(
            rows=rows,
            value_columns=list(parsed.value_columns),
            n_lines=len(parsed.molecules) + parsed.error_count,
            n_duplicates=len(parsed.molecules) - len(rows),
            errors=[{"line": e.line, "text": e.text, "message": e.message} for e in parsed.errors],
            n_invalid=parsed.error_count,
        )


def molecules_csv_gz(rows: list[tuple[str, str, dict[str, Any]]], columns: list[str]) -> bytes:
    """The stored form of a data set: gzipped CSV of canonical SMILES, name and values."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["smiles", "name", *columns])
    for smiles, name, values in rows:
        writer.writerow([smiles, name, *(values.get(c, "") for c in columns)])
    return gzip.compress(text.getvalue().encode(), compresslevel=6, mtime=0)


def dataset_import_store(*, dataset: MoleculeDataset, imported: ImportedMolecules) -> None:
    """Write an import's molecules and per-line report (inside the job's finishing
    transaction); a second call for a ready data set changes nothing."""
    locked = MoleculeDataset.objects.select_for_update().get(pk=dataset.pk)
    if locked.status == MoleculeDataset.Status.READY:
        return
    with media_writes() as writes:
        writes.save(
            locked.file,
            "molecules.csv.gz",
            ContentFile(molecules_csv_gz(imported.rows, imported.value_columns)),
        )
    locked.n_lines = imported.n_lines
    locked.n_molecules = len(imported.rows)
    locked.n_invalid = imported.n_invalid
    locked.n_duplicates = imported.n_duplicates
    locked.errors = imported.errors[:MAX_REPORTED_ERRORS]
    locked.value_columns = imported.value_columns
    locked.status = MoleculeDataset.Status.READY
    locked.save()


def dataset_mark_failed(*, dataset: MoleculeDataset) -> None:
    """Record that a data set's import failed (the job carries the reason)."""
    MoleculeDataset.objects.filter(pk=dataset.pk).exclude(
        status=MoleculeDataset.Status.READY
    ).update(status=MoleculeDataset.Status.FAILED)


MOSES_10K_NAME = "MOSES train (10k subset)"
MOSES_FULL_NAME = "MOSES train (1.58M)"


def dataset_builtin_ensure(*, user: User | None = None) -> list[MoleculeDataset]:
    """Register the built-in MOSES data sets (the shipped 10k subset; the full training set
    when the molsets wheel is installed), read by path. Idempotent; returns those created."""
    from drugs import sources

    created = []
    candidates: list[tuple[str, Any, str]] = [
        (
            MOSES_10K_NAME,
            sources.moses_train_10k(),
            "10,000 drug-like molecules drawn from the MOSES training split by its authors: "
            "trains a generator in minutes on a CPU.",
        )
    ]
    full = sources.moses_train_full()
    if full is not None:
        candidates.append(
            (
                MOSES_FULL_NAME,
                full,
                "The full MOSES training set (ZINC clean leads, filtered), from the molsets "
                "package. Design runs train on a random subset of the size you choose.",
            )
        )
    for name, path, description in candidates:
        if MoleculeDataset.objects.filter(name=name).exists() or not path.is_file():
            continue
        with gzip.open(path, "rt") if path.suffix == ".gz" else open(path) as handle:
            count = sum(1 for _ in handle) - 1  # header
        created.append(
            MoleculeDataset.objects.create(
                name=name,
                source=MoleculeDataset.Source.BUILTIN,
                status=MoleculeDataset.Status.READY,
                description=description,
                attribution=sources.MOSES_ATTRIBUTION,
                path=str(path),
                n_lines=count,
                n_molecules=count,
                created_by=user,
            )
        )
    return created


# Bounds that keep a run a sensible size for a shared worker: (low, high) per setting.
CONFIG_BOUNDS: dict[str, tuple[float, float]] = {
    "pretrain_epochs": (0, 200),
    "adversarial_epochs": (0, 200),
    "batch_size": (2, 4096),
    "embed_dim": (4, 1024),
    "hidden_dim": (8, 4096),
    "layers": (1, 6),
    "max_length": (10, 300),
    "samples_per_epoch": (16, 10_000),
    "pg_steps_per_epoch": (1, 1000),
    "discriminator_steps_per_epoch": (0, 1000),
    "discriminator_pretrain_steps": (0, 10_000),
    "temperature": (0.2, 3.0),
    "dropout": (0.0, 0.9),
}


def run_config_clean(config: dict[str, Any]) -> dict[str, Any]:
    """The generator settings as the GAN reads them (ValueError naming a bad setting)."""
    from drugs.ml.gan import GanConfig

    try:
        clean = GanConfig.from_dict(config).to_dict()
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"The generator settings are not valid: {exc}") from None
    for name, (low, high) in CONFIG_BOUNDS.items():
        value = clean.get(name)
        if isinstance(value, (int, float)) and not low <= value <= high:
            raise ValueError(f"{name.replace('_', ' ')} must be between {low:g} and {high:g}.")
    if clean.get("pretrain_epochs", 0) + clean.get("adversarial_epochs", 0) < 1:
        raise ValueError("Train for at least one epoch.")
    if not any(v > 0 for k, v in clean.items() if k.startswith("w_")):
        raise ValueError("Give at least one objective a positive weight.")
    return clean


def design_run_start(
    *,
    dataset: MoleculeDataset,
    name: str,
    config: dict[str, Any],
    user: User,
    n_samples: int = 2000,
    train_limit: int | None = 10_000,
    activity_endpoint: str = "",
    activate: bool = False,
    base_version: Any = None,
    from_scratch: bool = False,
) -> DesignRun:
    """Create a design run and the ml job that fine-tunes a generator on ``dataset`` with the
    objectives in ``config`` (GanConfig fields; its ``stop_on_collapse`` stops training on mode
    collapse, else it is flagged), registers it as a ``drugs.generator`` version and evaluates
    a sample of ``n_samples`` molecules. It starts from ``base_version``, else from the
    generator in service (the shipped prior on a fresh install); ``from_scratch`` (or no
    generator in service) trains a new one. ValueError naming the problem on bad settings."""
    from drugs.selectors import generator_active

    if base_version is None and not from_scratch:
        base_version = generator_active()
    if not dataset.is_ready:
        raise ValueError(f"The data set {dataset.name} is not ready ({dataset.status}).")
    if not MIN_SAMPLES <= n_samples <= MAX_SAMPLES:
        raise ValueError(f"Sample between {MIN_SAMPLES} and {MAX_SAMPLES:,} molecules.")
    if train_limit is not None and train_limit < 100:
        raise ValueError("Train on at least 100 molecules.")
    if base_version is not None and base_version.task != GENERATOR_TASK:
        raise ValueError(f"{base_version} is not a generator.")
    clean = run_config_clean(config)
    if clean.get("w_activity") and not activity_endpoint:
        raise ValueError("Choose the predictor whose activity the objective rewards.")
    kind = DesignRun.Kind.FINETUNE if base_version is not None else DesignRun.Kind.TRAIN
    with transaction.atomic():
        run = DesignRun.objects.create(
            name=name.strip() or f"{dataset.name} run",
            kind=kind,
            dataset=dataset,
            config={
                "gan": clean,
                "train_limit": train_limit,
                "activity_endpoint": activity_endpoint,
                "activate": bool(activate),
            },
            n_samples=n_samples,
            base_version=base_version,
            created_by=user,
        )
        verb = "Fine-tune" if base_version is not None else "Train"
        run.job = job_create(
            kind="drugs.design",
            owner=user,
            title=f"{verb} a molecule generator: {run.name}",
            params={"run_id": run.pk},
            target=run,
        )
        run.save(update_fields=["job"])
    return run


def design_run_sample_start(
    *,
    version: Any,
    user: User,
    n_samples: int = 2000,
    temperature: float = 1.0,
    dataset: MoleculeDataset | None = None,
    name: str = "",
) -> DesignRun:
    """Create a run that samples ``n_samples`` molecules from generator ``version`` and
    evaluates them against its training data set (or ``dataset``). ValueError on bad input."""
    if version.task != GENERATOR_TASK:
        raise ValueError(f"{version} is not a generator.")
    if not MIN_SAMPLES <= n_samples <= MAX_SAMPLES:
        raise ValueError(f"Sample between {MIN_SAMPLES} and {MAX_SAMPLES:,} molecules.")
    if not 0.2 <= temperature <= 3.0:
        raise ValueError("Use a sampling temperature between 0.2 and 3.")
    trained = version.params or {}
    if dataset is None:
        dataset_id = (version.training_data or {}).get("dataset_id")
        if dataset_id is not None:  # no pk, no data set
            dataset = MoleculeDataset.objects.filter(pk=dataset_id).first()
    if dataset is None or not dataset.is_ready:
        raise ValueError("Choose a ready data set to compare the molecules with.")
    with transaction.atomic():
        run = DesignRun.objects.create(
            name=name.strip() or f"{n_samples:,} molecules from {version}",
            kind=DesignRun.Kind.SAMPLE,
            dataset=dataset,
            # Novelty is judged against the molecules the generator was trained on: the same
            # seeded subset of its data set (the 1.58M MOSES set trains on a subset).
            config={
                "temperature": temperature,
                "train_limit": trained.get("train_limit", 10_000),
                "gan": {"seed": (trained.get("gan") or {}).get("seed", 0)},
            },
            n_samples=n_samples,
            base_version=version,
            generator=version,
            created_by=user,
        )
        run.job = job_create(
            kind="drugs.design",
            owner=user,
            title=f"Generate {n_samples:,} molecules with {version}",
            params={"run_id": run.pk},
            target=run,
        )
        run.save(update_fields=["job"])
    return run


def design_run_record_history(*, run: DesignRun, history: list[dict[str, Any]]) -> None:
    """Keep the per-epoch curves on the run as they arrive (so a cancelled or failed run
    still shows how far it got)."""
    DesignRun.objects.filter(pk=run.pk).update(history=history)


def design_run_store(
    *,
    run: DesignRun,
    generator: Any,
    history: list[dict[str, Any]],
    metrics: dict[str, Any],
    result: dict[str, Any],
    molecules: list[dict[str, Any]],
    counts: dict[str, int],
    collapse: bool,
) -> DesignRun:
    """Write a finished run's molecules and evaluation (inside the job's finishing
    transaction); a second call for a done run changes nothing."""
    locked = DesignRun.objects.select_for_update().get(pk=run.pk)
    if locked.status == DesignRun.Status.DONE:
        return locked
    fields = {f.name for f in GeneratedMolecule._meta.get_fields()}
    GeneratedMolecule.objects.bulk_create(
        [
            GeneratedMolecule(run=locked, **{k: v for k, v in m.items() if k in fields})
            for m in molecules
        ],
        batch_size=1000,
    )
    locked.generator = generator
    locked.history = history
    locked.metrics = metrics
    locked.result = result
    locked.collapse = collapse
    locked.n_sampled = counts.get("sampled", 0)
    locked.n_valid = counts.get("valid", 0)
    locked.n_unique = counts.get("unique", 0)
    locked.n_novel = counts.get("novel", 0)
    locked.status = DesignRun.Status.DONE
    locked.finished_at = timezone.now()
    locked.save()
    return locked


def dataset_reference_store(*, dataset: MoleculeDataset, metrics: dict[str, Any]) -> None:
    """Cache the training-set row of the MOSES table on the data set."""
    MoleculeDataset.objects.filter(pk=dataset.pk).update(reference_metrics=metrics)


def predictor_train_start(
    *, endpoint: str, kind: str, user: User, activate: bool = False, cv_folds: int = 5
) -> Job:
    """Queue training of a property predictor for ``endpoint`` (ml queue): cross-validated
    metrics, then a refit registered as a ``drugs.predictor.<endpoint>`` version, put into
    service when ``activate`` or when no version of it is in service yet. ValueError on an
    unknown endpoint or model kind."""
    from drugs.ml.predictors import ENDPOINTS

    if endpoint not in ENDPOINTS:
        raise ValueError(f"Unknown endpoint {endpoint!r}.")
    if kind not in PREDICTOR_KINDS:
        raise ValueError(f"Unknown model kind {kind!r}.")
    if not 2 <= cv_folds <= 10:
        raise ValueError("Use 2 to 10 cross-validation folds.")
    with transaction.atomic():
        return job_create(
            kind="drugs.predictor_training",
            owner=user,
            title=f"Train {PREDICTOR_KINDS[kind]} predictor: {endpoint}",
            params={
                "endpoint": endpoint,
                "kind": kind,
                "cv_folds": cv_folds,
                "activate": bool(activate),
                "task": predictor_task(endpoint),
            },
        )


# Keys are the ml layer's model kinds (drugs/ml/predictors.py), values what the form shows.
PREDICTOR_KINDS = {"random_forest": "random forest", "gradient_boosting": "gradient boosting"}


def shortlist_save(*, molecule: GeneratedMolecule, user: User, note: str) -> ShortlistEntry:
    """Put ``molecule`` on the user's shortlist with ``note`` (updates the note if it is
    already there)."""
    entry, _ = ShortlistEntry.objects.update_or_create(
        molecule=molecule, user=user, defaults={"note": note.strip()[:4000]}
    )
    return entry


def shortlist_remove(*, molecule: GeneratedMolecule, user: User) -> bool:
    """Take ``molecule`` off the user's shortlist; False if it was not on it."""
    deleted, _ = ShortlistEntry.objects.filter(molecule=molecule, user=user).delete()
    return bool(deleted)


def run_export(
    *, run: DesignRun, molecules: Any, fmt: str, user: User, request: Any = None
) -> tuple[str, str, str]:
    """The run's (filtered) molecules as CSV or SDF with the user's shortlist notes; audited.
    Returns (content, file name, content type). ValueError on an unknown format."""
    from drugs.exports import molecules_csv, molecules_sdf
    from medai_site.audit.models import AuditEvent
    from medai_site.audit.services import audit_record

    if fmt not in {"csv", "sdf"}:
        raise ValueError("Export as csv or sdf.")
    molecules = list(molecules)
    endpoints = sorted(run.result.get("predictors", {}))
    notes = dict(
        ShortlistEntry.objects.filter(
            user=user, molecule__in=[m.pk for m in molecules]
        ).values_list("molecule_id", "note")
    )
    write = molecules_csv if fmt == "csv" else molecules_sdf
    content = write(molecules, endpoints, notes)
    audit_record(
        action=AuditEvent.Action.EXPORTED,
        actor=user,
        request=request,
        obj=run,
        detail={"format": fmt, "molecules": len(molecules)},
    )
    content_type = "text/csv" if fmt == "csv" else "chemical/x-mdl-sdfile"
    return content, f"medai-run-{run.pk}-molecules.{fmt}", content_type
