"""dcmtk's command-line tools, always Debian's: pynetdicom installs its own `storescu` and
`echoscu` into the virtualenv, which bin/test puts first on PATH, and they take other options."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

DCMTK_BIN = Path("/usr/bin")


def dcmtk_tool(name: str) -> str:
    """The path of dcmtk's ``name`` (e.g. "storescu")."""
    return str(DCMTK_BIN / name)


def dcmtk_installed() -> bool:
    return all((DCMTK_BIN / tool).is_file() for tool in ("storescu", "echoscu"))


def dcmtk_run(tool: str, *args: str) -> subprocess.CompletedProcess:
    """Run dcmtk's ``tool`` with ``args``; its exit status and output come back, never raise."""
    return subprocess.run(
        [dcmtk_tool(tool), *args], capture_output=True, text=True, timeout=60, check=False
    )


def wait_for(check: Callable[[], object], *, seconds: float = 20.0) -> object:
    """Poll ``check`` until it returns something true (the receiver files a study after the
    sender released the association, in the receiver's thread)."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)
