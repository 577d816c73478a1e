"""The audit trail's hash chain: canonical row hashing and the verification walk.

Each row stores its ``sequence`` (1, 2, 3, ... without gaps), the ``prev_hash`` of the row
before it (``GENESIS`` for the first) and its own ``row_hash``: SHA-256 over a canonical
serialisation of its fields and that previous hash. Changing a field breaks the row's own
hash, deleting a row leaves a gap the next row's link exposes, and an inserted row is skipped
by the link of the row after it. Pure code (no ORM): rows are mappings of field values, as
``AuditEvent.objects.values(*CHAIN_FIELDS)`` returns them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Context, Decimal
from typing import Any

GENESIS = "0" * 64

# Every stored field except the database id (assigned by the database after the hash is
# computed; ``sequence`` is the row's place in the chain instead) and the hash itself.
HASHED_FIELDS = (
    "sequence",
    "prev_hash",
    "actor_id",
    "actor_username",
    "action",
    "outcome",
    "object_type",
    "object_id",
    "object_repr",
    "patient_id",
    "ip_address",
    "user_agent",
    "path",
    "detail",
    "created_at",
)
CHAIN_FIELDS = ("id", *HASHED_FIELDS, "row_hash")


def _number(value: int | float) -> str:
    # PostgreSQL's jsonb keeps numbers as decimals (1e300 comes back as 1000...0, -0.0 as 0),
    # so numbers are hashed by their exact decimal value, never by Python's spelling of them.
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(str(value))
    if value == 0:
        return "0"
    text = str(value)
    exact = Context(prec=len(text) + 2)  # enough digits that normalising never rounds
    return str(Decimal(text).normalize(exact))


def _json(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=True)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json(item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = sorted((str(key), item) for key, item in value.items())
        return "{" + ",".join(f"{json.dumps(k)}:{_json(v)}" for k, v in items) + "}"
    raise TypeError(f"Cannot hash {type(value).__name__} in an audit event")


def _ip(value: str | None) -> str | None:
    # The database may spell an address differently from the request (inet canonicalises
    # IPv6), so the address is hashed in one fixed spelling.
    return ipaddress.ip_address(value).exploded if value else None


def _timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(row: Mapping[str, Any]) -> bytes:
    """The bytes a row's hash covers: its hashed fields in a fixed, database-neutral form."""
    values = {name: row[name] for name in HASHED_FIELDS}
    values["ip_address"] = _ip(values["ip_address"])
    values["created_at"] = _timestamp(values["created_at"])
    return _json(values).encode("ascii")


def row_hash(row: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the row's canonical form, which includes the previous row's hash."""
    return hashlib.sha256(canonical(row)).hexdigest()


@dataclass(frozen=True)
class Break:
    """The first broken link: which row, what kind of tampering it looks like, and the hashes."""

    row_id: int
    sequence: int
    kind: str  # "altered", "deleted" or "inserted"
    expected: str
    stored: str
    message: str


@dataclass(frozen=True)
class Verdict:
    """Outcome of a walk: rows checked up to the break (all of them when ``ok``)."""

    count: int
    head_sequence: int
    head_hash: str
    broken: Break | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None


def chain_verify(rows: Iterable[Mapping[str, Any]]) -> Verdict:
    """Walk rows in sequence order; stop at the first broken link and classify it."""
    expected_prev, expected_seq, count = GENESIS, 1, 0
    accepted: Mapping[str, Any] | None = None
    iterator = iter(rows)
    current = next(iterator, None)
    while current is not None:
        following = next(iterator, None)
        computed = row_hash(current)
        own_ok = computed == current["row_hash"]
        link_ok = current["prev_hash"] == expected_prev
        seq_ok = current["sequence"] == expected_seq
        if own_ok and link_ok and seq_ok:
            count += 1
            expected_prev, expected_seq = current["row_hash"], expected_seq + 1
            accepted, current = current, following
            continue
        if accepted is not None and current["prev_hash"] == accepted["prev_hash"] != expected_prev:
            # Two rows claim the same predecessor: the one accepted last was slipped in (with
            # a well-formed hash) in front of the row the chain had written there.
            broken = Break(
                accepted["id"],
                accepted["sequence"],
                "inserted",
                accepted["prev_hash"],
                accepted["prev_hash"],
                f"row id {accepted['id']} (sequence {accepted['sequence']}) was inserted: "
                f"row id {current['id']} links to the same predecessor, "
                f"{accepted['prev_hash']}",
            )
            return Verdict(count - 1, expected_seq - 2, accepted["prev_hash"], broken)
        broken = _classify(current, following, computed, expected_prev, expected_seq)
        return Verdict(count, expected_seq - 1, expected_prev, broken)
    return Verdict(count, expected_seq - 1, expected_prev)


def _classify(
    row: Mapping[str, Any],
    following: Mapping[str, Any] | None,
    computed: str,
    expected_prev: str,
    expected_seq: int,
) -> Break:
    where = f"row id {row['id']} (sequence {row['sequence']})"
    skipped = following is not None and following["prev_hash"] == expected_prev
    forged = computed != row["row_hash"] and row["prev_hash"] != expected_prev
    if skipped or forged or row["sequence"] < expected_seq:
        # The chain goes around this row (the row after it links to the row before it), or
        # neither its hash nor its link was written by the chain.
        return Break(
            row["id"],
            row["sequence"],
            "inserted",
            expected_prev,
            row["prev_hash"],
            f"{where} was inserted: it is not part of the chain "
            f"(expected sequence {expected_seq} linking to {expected_prev})",
        )
    if computed != row["row_hash"]:
        return Break(
            row["id"],
            row["sequence"],
            "altered",
            computed,
            row["row_hash"],
            f"{where} was altered: its fields hash to {computed}, "
            f"but the chain recorded {row['row_hash']}"
            + ("" if following is not None else " (the last row: it may also be inserted)"),
        )
    if row["sequence"] > expected_seq:
        missing = row["sequence"] - expected_seq
        span = (
            f"sequence {expected_seq}"
            if missing == 1
            else f"sequences {expected_seq}-{row['sequence'] - 1}"
        )
        return Break(
            row["id"],
            row["sequence"],
            "deleted",
            expected_prev,
            row["prev_hash"],
            f"{missing} row(s) before {where} were deleted ({span}): it links to "
            f"{row['prev_hash']}, the last intact row's hash is {expected_prev}",
        )
    return Break(
        row["id"],
        row["sequence"],
        "altered",
        expected_prev,
        row["prev_hash"],
        f"{where} was altered and re-hashed: it links to {row['prev_hash']}, "
        f"the previous row's hash is {expected_prev}",
    )
