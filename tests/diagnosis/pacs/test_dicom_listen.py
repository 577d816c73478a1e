"""manage.py dicom_listen refuses bad arguments with a clear message before it listens."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ae-title", "A" * 17, "--port", "11112"], "--ae-title must be 1 to 16 ASCII"),
        (["--ae-title", "", "--port", "11112"], "--ae-title must be 1 to 16 ASCII"),
        (["--port", "70000"], "--port must be between 1 and 65535"),
    ],
)
def test_bad_arguments_are_refused(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("dicom_listen", *args)


def test_a_port_in_use_is_refused_clearly():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CommandError, match=f"Cannot listen on port {port}"):
            call_command("dicom_listen", "--port", str(port))
