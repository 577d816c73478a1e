"""Media files written by requests and jobs: no partial or orphan file outlives a failure.

Two halves, because a process can fail in two ways:

* it raises (a decoder error, ENOSPC, a rolled-back transaction): ``media_writes()`` deletes
  every file written inside it, partial ones included, before the exception goes on;
* it is killed (OOM killer, a worker's hard time limit, a deploy) before its transaction
  commits: nothing runs in the process any more, so ``media_orphans_sweep`` later deletes the
  files under the folders apps registered that no row references and that are older than a
  grace period (longer than any request or job could still be writing them).

Apps register the folders they own from ``AppConfig.ready()`` (``media_folder_register``); the
platform never imports a domain app.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta

from django.apps import apps
from django.core.files.base import File
from django.core.files.storage import Storage, default_storage
from django.db import models
from django.db.models.fields.files import FieldFile
from django.utils import timezone

logger = logging.getLogger(__name__)

# OSError numbers that mean "the volume (or the user's quota on it) is full".
STORAGE_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

_FOLDERS: set[str] = set()
_ACTIVE: ContextVar[MediaWrites | None] = ContextVar("medai_media_writes", default=None)


def media_folder_register(prefix: str) -> None:
    """Declare a folder under MEDIA_ROOT whose files are owned by FileFields (idempotent)."""
    _FOLDERS.add(prefix.strip("/") + "/")


def media_folders() -> list[str]:
    """The registered folders, sorted."""
    return sorted(_FOLDERS)


def is_storage_full(exc: BaseException) -> bool:
    """True for an OSError that says the disk or quota is full."""
    return isinstance(exc, OSError) and exc.errno in STORAGE_FULL_ERRNOS


@dataclass
class MediaWrites:
    """Files written inside one ``media_writes()`` block, deleted if the block raises."""

    storage: Storage = field(default_factory=lambda: default_storage)
    names: list[str] = field(default_factory=list)

    def save(self, fieldfile: FieldFile, filename: str, content: File) -> str:
        """Write ``content`` for ``fieldfile`` (the instance is not saved); returns the name.

        The name is recorded *before* the write, so a write that fails halfway (ENOSPC in
        the middle of a chunk) is deleted too: Django's storage leaves such a partial file.
        """
        storage = fieldfile.storage
        name = fieldfile.field.generate_filename(fieldfile.instance, filename)
        name = storage.get_available_name(name, max_length=fieldfile.field.max_length)
        self.names.append(name)
        saved = storage.save(name, content, max_length=fieldfile.field.max_length)
        if saved != name:  # another writer took the name in between; keep both to clean
            self.names.append(saved)
        fieldfile.name = saved
        setattr(fieldfile.instance, fieldfile.field.attname, saved)
        fieldfile._committed = True  # type: ignore[attr-defined]  # Django's own flag, not in the stubs
        return saved

    def delete_all(self) -> None:
        """Delete every recorded file; a file that is already gone is fine."""
        for name in reversed(self.names):
            try:
                self.storage.delete(name)
            except OSError:
                # The sweep removes it later; the original error matters more than this one.
                logger.warning("could not delete %s after a failed write", name, exc_info=True)
        self.names.clear()


@contextmanager
def media_writes() -> Iterator[MediaWrites]:
    """Collect the files written in the block; if it raises, delete them and re-raise.

    Use it around the whole unit of work, outside its ``transaction.atomic()``, so a failure
    of the commit itself is covered too. Blocks nest: an inner block's files are deleted
    when the outer block fails later.
    """
    writes = MediaWrites()
    outer = _ACTIVE.get()
    token = _ACTIVE.set(writes)
    try:
        yield writes
    except BaseException:
        writes.delete_all()
        raise
    else:
        # A nested block's files stay the enclosing block's responsibility: the outer
        # transaction may still roll back after the inner one succeeded.
        if outer is not None:
            outer.names.extend(writes.names)
    finally:
        _ACTIVE.reset(token)


def _referenced_names() -> set[str]:
    """Every file name any FileField of any installed model refers to."""
    names: set[str] = set()
    for model in apps.get_models():
        file_fields = [
            f.attname for f in model._meta.concrete_fields if isinstance(f, models.FileField)
        ]
        for attname in file_fields:
            values = (
                model._default_manager.exclude(**{attname: ""})
                .values_list(attname, flat=True)
                .iterator(chunk_size=5000)
            )
            names.update(v for v in values if v)
    return names


def _walk(storage: Storage, folder: str) -> Iterator[str]:
    """Every file name under ``folder`` (recursively); nothing when it does not exist."""
    try:
        directories, files = storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        yield f"{folder}{name}"
    for directory in directories:
        yield from _walk(storage, f"{folder}{directory}/")


@dataclass(frozen=True)
class SweepReport:
    deleted: list[str]
    kept_recent: int
    referenced: int


def media_orphans_sweep(*, older_than: timedelta, dry_run: bool = False) -> SweepReport:
    """Delete files under the registered folders that no row references and that are older
    than ``older_than``; idempotent. Returns what was (or, dry run, would be) deleted."""
    storage = default_storage
    cutoff = timezone.now() - older_than
    referenced = _referenced_names()
    deleted: list[str] = []
    kept_recent = in_use = 0
    for folder in media_folders():
        for name in _walk(storage, folder):
            if name in referenced:
                in_use += 1
                continue
            try:
                modified = storage.get_modified_time(name)
            except FileNotFoundError:
                continue  # deleted meanwhile
            if modified > cutoff:
                # Possibly a request or job still inside its transaction.
                kept_recent += 1
                continue
            if not dry_run:
                try:
                    storage.delete(name)
                except FileNotFoundError:
                    continue
            deleted.append(name)
    if deleted:
        verb = "found" if dry_run else "deleted"
        logger.info("media sweep: %s %d orphan file(s)", verb, len(deleted))
    return SweepReport(deleted=deleted, kept_recent=kept_recent, referenced=in_use)
