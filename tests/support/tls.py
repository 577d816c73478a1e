"""A throwaway certificate authority for TLS tests, made with the `openssl` command line: a
self-signed CA and certificates it signs (a server one for 127.0.0.1 and localhost, client
ones), as PEM files in a folder."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


@dataclass(frozen=True)
class Pem:
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


class TestAuthority:
    """A CA named ``name`` in ``folder``; ``issue`` signs a server or client certificate."""

    __test__ = False  # not a pytest class

    def __init__(self, folder: Path, name: str = "MedAI test CA") -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = name.replace(" ", "-")
        self.pem = Pem(cert=folder / f"{stem}.crt", key=folder / f"{stem}.key")
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", f"/CN={name}", "-keyout", str(self.pem.key), "-out", str(self.pem.cert),
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            cwd=folder,
        )  # fmt: skip

    def issue(self, name: str, *, server: bool) -> Pem:
        """A certificate for ``name`` signed by this CA (a server one names 127.0.0.1)."""
        pem = Pem(cert=self.folder / f"{name}.crt", key=self.folder / f"{name}.key")
        request = self.folder / f"{name}.csr"
        extensions = self.folder / f"{name}.ext"
        lines = ["basicConstraints=CA:FALSE"]
        if server:
            lines += ["extendedKeyUsage=serverAuth", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        else:
            lines.append("extendedKeyUsage=clientAuth")
        extensions.write_text("\n".join(lines) + "\n")
        _openssl(
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
            "-keyout", str(pem.key), "-out", str(request), cwd=self.folder,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", str(request), "-CA", str(self.pem.cert),
            "-CAkey", str(self.pem.key), "-CAcreateserial", "-days", "1",
            "-extfile", str(extensions), "-out", str(pem.cert), cwd=self.folder,
        )  # fmt: skip
        return pem
