"""A small storage SCP (pynetdicom) standing in for a PACS that MedAI sends results to: it
keeps what it receives and can answer chosen statuses first (a busy archive)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt

from diagnosis.imaging.heatmap_capture import SECONDARY_CAPTURE
from diagnosis.imaging.sr import COMPREHENSIVE_SR


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class StorePeer:
    port: int
    ae_title: str = "TESTPACS"
    received: list[Dataset] = field(default_factory=list)
    # Statuses answered, in order, before plain success (0xA700: out of resources).
    statuses: list[int] = field(default_factory=list)

    def uids(self) -> list[str]:
        return [str(ds.SOPInstanceUID) for ds in self.received]

    def _store(self, event: Any) -> int:
        if self.statuses:
            return self.statuses.pop(0)
        ds = event.dataset
        ds.file_meta = event.file_meta
        self.received.append(ds)
        return 0x0000


@contextmanager
def store_peer() -> Iterator[StorePeer]:
    """A storage SCP on a free local port that accepts SR and Secondary Capture objects."""
    peer = StorePeer(port=free_port())
    ae = AE(ae_title=peer.ae_title)
    for sop_class in (COMPREHENSIVE_SR, SECONDARY_CAPTURE):
        ae.add_supported_context(sop_class, ALL_TRANSFER_SYNTAXES)
    server = ae.start_server(
        ("127.0.0.1", peer.port), block=False, evt_handlers=[(evt.EVT_C_STORE, peer._store)]
    )
    try:
        yield peer
    finally:
        server.shutdown()
