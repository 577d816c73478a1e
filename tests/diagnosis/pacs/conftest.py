"""The receiver runs in a thread of the test process (its own database connections, so the
tests that use it commit: transactional_db)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from diagnosis.pacs.receiver import Receiver


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dcmtk() -> None:
    if shutil.which("storescu") is None:
        pytest.fail("dcmtk is missing: bin/test installs it (apt-get install dcmtk)")


@pytest.fixture
def receiver(transactional_db) -> Iterator[tuple[Receiver, int]]:
    """MedAI's receiver, AE title MEDAI, accepting the calling AE titles STORESCU and ORTHANC."""
    port = free_port()
    receiver = Receiver(ae_title="MEDAI", allow=["STORESCU", "ORTHANC", "ECHOSCU"])
    receiver.settle_seconds = 0.5
    receiver.start(host="127.0.0.1", port=port, block=False)
    yield receiver, port
    receiver.stop()


def dcmtk_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def wait_for(check: Callable[[], object], *, seconds: float = 20.0) -> object:
    """Poll ``check`` until it returns something true (the receiver files a study after the
    sender released the association, in the receiver's thread)."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)
