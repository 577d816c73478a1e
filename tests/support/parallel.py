"""bin/test runs pytest in parallel processes (pytest-xdist); what a test process may take."""

from __future__ import annotations

import os


def torch_threads() -> int:
    """Threads for torch in a test process: the machine's 2 cores shared between bin/test's
    parallel processes, so two processes never fight over one core."""
    return max(1, 2 // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
