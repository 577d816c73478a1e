"""Reads that may go to a read replica (a streaming standby of the primary database).

A request opts in for one block of reads with ``on_replica(fn)``: inside it, the router sends
every read to ``settings.MEDAI_ANALYTICS_DATABASE`` ("replica" when MEDAI_DATABASE_REPLICA_URL
is set, else "default"); writes always go to "default". Outside such a block nothing changes,
so a page never reads its own write back from a copy that has not replayed it yet.

A replica lags the primary by the time it takes to replay the WAL (usually well under a
second; minutes while it catches up). The block therefore reports how fresh its data is
(``ReadSource.as_of``), and falls back to the primary when the replica cannot be reached or
cancels a query that conflicts with replay: a lagging or restarting replica slows nothing
down for the user and never breaks a page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections
from django.utils import timezone

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: The alias settings give the replica (MEDAI_DATABASE_REPLICA_URL; the tests' mirror).
REPLICA_ALIAS = "replica"
# The alias reads go to inside on_replica(); None outside (Django's own choice: default).
_READ_ALIAS: ContextVar[str | None] = ContextVar("medai_read_alias", default=None)


def replica_alias() -> str:
    """The alias analytics reads use: "replica" when one is configured, else "default"."""
    alias = getattr(settings, "MEDAI_ANALYTICS_DATABASE", DEFAULT_DB_ALIAS)
    return alias if alias in settings.DATABASES else DEFAULT_DB_ALIAS


class ReplicaRouter:
    """Reads inside on_replica() go to the replica; every write goes to the primary, even
    for a row that was read from the replica; nothing is migrated on the replica (it is a
    physical copy of the primary and replays its migrations)."""

    def db_for_read(self, model: type, **hints: Any) -> str | None:
        return _READ_ALIAS.get()

    def db_for_write(self, model: type, **hints: Any) -> str | None:
        instance = hints.get("instance")
        if instance is not None and instance._state.db == REPLICA_ALIAS:
            return DEFAULT_DB_ALIAS
        return None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        # The replica holds the primary's rows: a row read there may point at one read here.
        same = {DEFAULT_DB_ALIAS, REPLICA_ALIAS}
        if obj1._state.db in same and obj2._state.db in same:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if db == REPLICA_ALIAS else None


@dataclass(frozen=True)
class ReadSource:
    """Where a block's reads went and how fresh they are."""

    alias: str
    #: the data includes every change committed on the primary up to this moment; None when
    #: a standby has replayed no transaction since it started (freshness unknown)
    as_of: datetime | None
    #: True when the reads came from a standby in recovery (as_of may lag behind now)
    standby: bool = False
    #: why the block read the primary although a replica is configured ("" if it did not)
    fallback: str = ""


def _freshness(alias: str) -> ReadSource:
    """How fresh the data of ``alias`` is, measured before the block's queries run (so the
    block read at least this much)."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return ReadSource(alias=alias, as_of=timezone.now())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery(), pg_last_xact_replay_timestamp()")
        in_recovery, replayed = cursor.fetchone()
    if not in_recovery:
        return ReadSource(alias=alias, as_of=timezone.now())
    # On a standby: the commit time of the last transaction replayed. While the primary is
    # idle this stays put although the copy is complete; it never claims more than it has.
    return ReadSource(alias=alias, as_of=replayed, standby=True)


@contextmanager
def _reads_on(alias: str) -> Iterator[None]:
    token = _READ_ALIAS.set(alias)
    try:
        yield
    finally:
        _READ_ALIAS.reset(token)


def on_replica(read: Callable[[], T], *, allowed: bool = True) -> tuple[T, ReadSource]:
    """Run ``read`` (reads only) with its queries on the analytics replica when one is
    configured and ``allowed``, else on the primary; on the primary too when the replica is
    unreachable or cancels a query (recovery conflict). Returns its result and where it read."""
    alias = replica_alias()
    if not allowed or alias == DEFAULT_DB_ALIAS:
        return read(), ReadSource(alias=DEFAULT_DB_ALIAS, as_of=timezone.now())
    try:
        source = _freshness(alias)
        with _reads_on(alias):
            return read(), source
    except OperationalError as error:
        # Only the replica is read in the block, so its connection or a replay conflict
        # failed: the primary answers instead (it has every row the replica would have had).
        logger.warning("analytics replica %r failed (%s); reading the primary", alias, error)
        connections[alias].close()
        return read(), ReadSource(
            alias=DEFAULT_DB_ALIAS, as_of=timezone.now(), fallback="the replica did not answer"
        )
