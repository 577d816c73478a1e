"""Pre-trained model artifacts shipped in the repository, so the demo's models are in service
from the first start instead of minutes later.

Layout, one folder per model under ``data/models/<slug>/`` (MEDAI_SHIPPED_MODELS_DIR):

- the artifact file (any name; the one SHA256SUMS names),
- ``SHA256SUMS``: ``<sha256>  <artifact file>`` (``sha256sum -c`` checks it),
- ``training.log``: what the training printed,
- ``metrics.json``: what the registry records for the version (``task``, ``params``,
  ``training_data``, ``metrics``) and how it was made (``command``, ``seconds``, ``hardware``),
- ``README.md``: the exact command that trained it, the hardware and the time it took.

An app declares each of its shipped models from ``AppConfig.ready()`` with
:func:`shipped_model_register`: the slug, the model task, and ``build`` (the same training
code its training job runs, returning a :class:`TrainedModel`). ``manage.py shipped_models
build`` (re)writes a folder from it; ``bin/run`` rebuilds missing ones before serving. A
folder written by another tool (e.g. the drug generator's prior) only has to follow the
layout to be verified by :func:`shipped_artifact`.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings

SUMS = "SHA256SUMS"
_SUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *]([^/\\]+)$")


class ShippedArtifactError(ValueError):
    """A shipped model folder is missing, incomplete, or its artifact does not match its
    recorded sha256 (the message says which and how to rebuild it)."""


@dataclass(frozen=True)
class TrainedModel:
    """What a training run produced, as the registry records it: the artifact bytes and the
    version's params, training data and metrics, plus a one-line headline ``finding``."""

    task: str
    content: bytes
    params: dict[str, Any] = field(default_factory=dict)
    training_data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    finding: str = ""


class BuildLog:
    """The progress reporter handed to a build: the same ``update`` a job's Progress offers,
    written as lines of the training log (and echoed to ``echo``)."""

    def __init__(self, echo: Callable[[str], None] | None = None) -> None:
        self.lines: list[str] = []
        self._echo = echo
        self._start = time.monotonic()
        self._last = ""

    def write(self, text: str) -> None:
        line = f"[{time.monotonic() - self._start:7.1f} s] {text}"
        self.lines.append(line)
        if self._echo is not None:
            self._echo(line)

    def update(
        self,
        percent: float,
        stage: str | None = None,
        *,
        force: bool = False,
        live: dict[str, Any] | None = None,
    ) -> None:
        """Log ``stage`` at ``percent`` when it changed (``live`` chart data is not logged)."""
        if stage and stage != self._last:
            self._last = stage
            self.write(f"{percent:5.1f} %  {stage}")


Builder = Callable[[BuildLog], TrainedModel]


@dataclass(frozen=True)
class ShippedModel:
    """A shipped model an app declares: its folder ``slug``, the model ``task`` it is a
    version of, the artifact file name, how to ``build`` it (None: built by another tool,
    ``command`` says which) and about how many CPU minutes a build takes."""

    slug: str
    task: str
    artifact_name: str
    build: Builder | None
    command: str
    minutes: float
    label: str


_shipped: dict[str, ShippedModel] = {}


def shipped_model_register(
    *,
    slug: str,
    task: str,
    label: str,
    build: Builder | None,
    artifact_name: str = "model.bin",
    command: str = "",
    minutes: float = 1.0,
) -> None:
    """Declare a shipped model (once per app; registering a slug again replaces it). The
    default ``command`` is ``python manage.py shipped_models build <slug>``."""
    _shipped[slug] = ShippedModel(
        slug=slug,
        task=task,
        artifact_name=artifact_name,
        build=build,
        command=command or f"python manage.py shipped_models build {slug}",
        minutes=minutes,
        label=label,
    )


def shipped_models() -> list[ShippedModel]:
    """Every declared shipped model, by slug."""
    return [_shipped[slug] for slug in sorted(_shipped)]


def shipped_model(slug: str) -> ShippedModel:
    """The declared shipped model ``slug``; ShippedArtifactError naming the known ones."""
    try:
        return _shipped[slug]
    except KeyError:
        known = ", ".join(sorted(_shipped)) or "none"
        raise ShippedArtifactError(f"No app ships a model {slug!r}. Shipped: {known}.") from None


def shipped_root() -> Path:
    return Path(settings.MEDAI_SHIPPED_MODELS_DIR)


@dataclass(frozen=True)
class ShippedArtifact:
    """A verified shipped artifact: its bytes, sha256 and the folder's metrics.json."""

    slug: str
    folder: Path
    name: str
    sha256: str
    content: bytes
    record: dict[str, Any]

    @property
    def reference(self) -> str:
        """How the folder is named in records: relative to the repository when inside it."""
        try:
            return str(self.folder.relative_to(settings.BASE_DIR))
        except ValueError:
            return str(self.folder)


def _rebuild_hint(slug: str) -> str:
    known = _shipped.get(slug)
    if known is None:
        return ""
    return f" Rebuild it with: {known.command}"


def shipped_artifact(*, slug: str, root: Path | None = None) -> ShippedArtifact:
    """The artifact of ``data/models/<slug>/`` read and checked against its SHA256SUMS line;
    ShippedArtifactError (saying what is wrong and how to rebuild) when the folder, its
    SHA256SUMS or its artifact is missing, or the bytes do not match the recorded sha256."""
    folder = (root or shipped_root()) / slug
    sums = folder / SUMS
    if not sums.is_file():
        raise ShippedArtifactError(
            f"The shipped model {slug} is missing: {sums} does not exist." + _rebuild_hint(slug)
        )
    entries = [line.strip() for line in sums.read_text().splitlines() if line.strip()]
    matched = [_SUM_LINE.match(line) for line in entries]
    if len(entries) != 1 or matched[0] is None:
        raise ShippedArtifactError(
            f"{sums} must hold exactly one line '<sha256>  <artifact file>' (as sha256sum "
            "writes it)."
        )
    expected, name = matched[0].group(1), matched[0].group(2)
    path = folder / name
    if not path.is_file():
        raise ShippedArtifactError(
            f"The shipped model {slug} is missing its artifact {path}." + _rebuild_hint(slug)
        )
    content = path.read_bytes()
    actual = hashlib.sha256(content).hexdigest()
    if actual != expected:
        raise ShippedArtifactError(
            f"The shipped model {slug} was refused: {path} has sha256 {actual}, but {SUMS} "
            f"records {expected}. The file was changed or damaged; restore it from the "
            "repository (git checkout) or rebuild it." + _rebuild_hint(slug)
        )
    record: dict[str, Any] = {}
    metrics = folder / "metrics.json"
    if metrics.is_file():
        try:
            loaded = json.loads(metrics.read_text())
        except ValueError as exc:
            raise ShippedArtifactError(f"{metrics} is not valid JSON: {exc}") from None
        record = loaded if isinstance(loaded, dict) else {}
    return ShippedArtifact(
        slug=slug, folder=folder, name=name, sha256=actual, content=content, record=record
    )


def shipped_problems(*, root: Path | None = None) -> dict[str, str]:
    """Declared shipped models whose folder does not verify, slug -> the reason."""
    problems = {}
    for item in shipped_models():
        try:
            shipped_artifact(slug=item.slug, root=root)
        except ShippedArtifactError as exc:
            problems[item.slug] = str(exc)
    return problems


def _hardware() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}; {os.cpu_count()} logical CPUs on the machine, torch {torch.__version__} "
        f"with {torch.get_num_threads()} thread(s); Python {platform.python_version()}"
    )


def _json_safe(value: Any) -> Any:
    """JSON as the registry stores it (NaN and infinities as null, tuples as lists)."""
    return json.loads(json.dumps(value, default=str).replace("NaN", "null"))


def shipped_build(
    *, slug: str, root: Path | None = None, echo: Callable[[str], None] | None = None
) -> ShippedArtifact:
    """Train ``slug`` with its app's builder and (re)write its folder: artifact, SHA256SUMS,
    training.log, metrics.json, README.md. Returns the verified artifact. Deterministic
    (seeded, one thread) up to timings recorded in the metrics."""
    import torch

    item = shipped_model(slug)
    if item.build is None:
        raise ShippedArtifactError(
            f"The shipped model {slug} is not built by MedAI's builders; build it with: "
            f"{item.command}"
        )
    torch.set_num_threads(1)
    torch.manual_seed(0)
    log = BuildLog(echo)
    started = datetime.now(UTC).replace(microsecond=0)
    log.write(f"Building {item.label} ({slug}) with: {item.command}")
    hardware = _hardware()
    log.write(f"Hardware: {hardware}")
    t0 = time.monotonic()
    trained = item.build(log)
    seconds = round(time.monotonic() - t0, 1)
    if trained.task != item.task:
        raise ShippedArtifactError(
            f"The builder of {slug} trained {trained.task}, not {item.task}."
        )
    sha = hashlib.sha256(trained.content).hexdigest()
    log.write(
        f"Done in {seconds} s: {len(trained.content):,} bytes, sha256 {sha}"
        + (f"; {trained.finding}" if trained.finding else "")
    )
    folder = (root or shipped_root()) / slug
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.is_file() and old.name not in {"README.md"}:
            old.unlink()
    (folder / item.artifact_name).write_bytes(trained.content)
    (folder / SUMS).write_text(f"{sha}  {item.artifact_name}\n")
    (folder / "training.log").write_text("\n".join(log.lines) + "\n")
    record = {
        "slug": slug,
        "task": trained.task,
        "artifact": item.artifact_name,
        "sha256": sha,
        "bytes": len(trained.content),
        "finding": trained.finding,
        "command": item.command,
        "started_at": started.isoformat(),
        "seconds": seconds,
        "hardware": hardware,
        "params": trained.params,
        "training_data": trained.training_data,
        "metrics": trained.metrics,
    }
    (folder / "metrics.json").write_text(json.dumps(_json_safe(record), indent=1) + "\n")
    (folder / "README.md").write_text(
        f"# {item.label} (shipped pre-trained model `{slug}`)\n\n"
        f"Model task `{trained.task}`; artifact `{item.artifact_name}` "
        f"({len(trained.content):,} bytes, sha256 in `{SUMS}`).\n"
        + (f"Result: {trained.finding}.\n" if trained.finding else "")
        + f"\nTrained by the product's own training code with:\n\n    {item.command}\n\n"
        f"on {started:%Y-%m-%d %H:%M} UTC in {seconds} s ({seconds / 60:.1f} min) on: "
        f"{hardware}.\n\nSeeded and single-threaded, so a rebuild gives the same weights; "
        "timings recorded in the metrics (and, for some models, inside the artifact) differ, "
        "so the sha256 of a rebuild can differ. `training.log` is what the run printed; "
        "`metrics.json` is what `seed_demo` records on the model version it registers and "
        "activates (bootstrap) from this folder.\n"
    )
    return shipped_artifact(slug=slug, root=root)


@dataclass(frozen=True)
class ShippedInstall:
    """What :func:`shipped_model_install` did: the version (None when the task already had
    another in service), whether it was added now, and its validation's status when run."""

    version: Any
    installed: bool
    validation: str = ""

    def note(self, label: str) -> str:
        """A console line for seed_demo ("" when nothing was done)."""
        if not self.installed or self.version is None:
            return ""
        checked = f"; held-out validation {self.validation}" if self.validation else ""
        return f"put the shipped {label} into service ({self.version}{checked})"


def shipped_model_install(
    *, slug: str, user: Any, training_data: dict[str, Any] | None = None, validate: bool = True
) -> ShippedInstall:
    """Register the verified shipped model ``slug`` as a version of its task, with the params,
    training data (plus ``training_data``) and metrics of its metrics.json, and put it into
    service as ``user`` (bootstrap, with the shipped folder as the recorded reason). With
    ``validate``, its held-out validation job runs here and now (so it is recorded before
    any worker starts and never queues ahead of clinical work). Idempotent: nothing is done
    when a version with its sha256 exists or the task has had a version in service.
    ShippedArtifactError when the folder does not verify or the artifact does not load
    through the task's loader."""
    from django.db import transaction

    from medai_site.jobs.runtime import job_run_now
    from medai_site.registry.catalogue import model_kind_of
    from medai_site.registry.models import ModelValidation, ModelVersion
    from medai_site.registry.services import (
        model_task_bootstrappable,
        model_version_activate,
        model_version_register,
    )

    item = shipped_model(slug)
    found = shipped_artifact(slug=slug)
    existing = ModelVersion.objects.filter(task=item.task, sha256=found.sha256).first()
    if existing is not None:
        return ShippedInstall(version=existing, installed=False)
    if not model_task_bootstrappable(task=item.task):
        return ShippedInstall(version=None, installed=False)
    kind = model_kind_of(item.task)
    if kind is None:
        raise ShippedArtifactError(f"No app declares the model task {item.task} of {slug}.")
    try:
        kind.load(found.content)
    except Exception as exc:  # loaders raise many types for bytes of another kind
        raise ShippedArtifactError(
            f"The shipped model {slug} does not load as a {kind.label}: {exc}"
        ) from None
    record = found.record
    command = record.get("command") or item.command
    with transaction.atomic():
        version = model_version_register(
            task=item.task,
            artifact=found.content,
            created_by=user,
            params=dict(record.get("params") or {}),
            training_data={
                **dict(record.get("training_data") or {}),
                **(training_data or {}),
                "shipped": found.reference,
            },
            metrics=dict(record.get("metrics") or {}),
            notes=f"Shipped pre-trained model {found.reference} (sha256 {found.sha256}), "
            f"trained by: {command}",
        )
        version = model_version_activate(
            version=version,
            user=user,
            reason=f"the pre-trained demo model shipped in {found.reference} (sha256 "
            f"{found.sha256[:16]}...), put into service by seed_demo at first start",
        )
    status = ""
    pending = ModelValidation.objects.filter(
        version=version, status=ModelValidation.Status.PENDING, job__isnull=False
    ).first()
    if validate and pending is not None and pending.job_id is not None:
        job_run_now(job_id=pending.job_id)
        pending.refresh_from_db()
        status = pending.get_status_display().lower()
    return ShippedInstall(version=version, installed=True, validation=status)
