"""A private Orthanc (Debian's `orthanc`, with `orthanc-dicomweb` when installed) for the
tests: a generated configuration on free ports, its own storage under a temporary folder,
MedAI's receiver registered as the modality ``medai``, stopped at the end. It never uses the
machine-wide service the package installs. bin/test installs the packages when missing.

    with orthanc_running(tmp_path, medai=("MEDAI", "127.0.0.1", port)) as pacs:
        pacs.upload(path)
        pacs.post("/modalities/medai/store", {"Resources": [study_id], "Synchronous": True})

    # MedAI's STOW-RS endpoint as the DICOMweb server ``medai`` (needs orthanc-dicomweb):
    with orthanc_running(tmp_path, dicomweb_servers={"medai": {"Url": url, ...}}) as pacs:
        pacs.post("/dicom-web/servers/medai/stow", {"Resources": [study_id]})
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
AE_TITLE = "ORTHANC"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def orthanc_available() -> bool:
    return Path(ORTHANC).exists() or shutil.which("Orthanc") is not None


@dataclass
class Orthanc:
    """A running private Orthanc: its REST API at ``url``, its DICOM port and AE title."""

    url: str
    http_port: int
    dicom_port: int
    process: subprocess.Popen
    log: Path
    aet: str = AE_TITLE

    def request(self, method: str, path: str, body: bytes | None = None, ctype: str = "") -> Any:
        connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=60)
        try:
            connection.request(
                method, path, body=body, headers={"Content-Type": ctype} if ctype else {}
            )
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if response.status >= 400:
            raise RuntimeError(f"Orthanc {method} {path}: HTTP {response.status} {data[:500]!r}")
        return json.loads(data) if data[:1] in (b"{", b"[") else data

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, payload: Any) -> Any:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.request("POST", path, body, "application/json")

    def upload(self, path: Path) -> dict[str, Any]:
        """Store one DICOM file through the REST API; Orthanc's answer (ParentStudy, ...)."""
        return self.request("POST", "/instances", path.read_bytes(), "application/dicom")


def _config(
    folder: Path,
    *,
    http_port: int,
    dicom_port: int,
    modalities: dict,
    dicomweb_servers: dict | None = None,
) -> dict:
    config: dict[str, Any] = {
        "Name": "medai-test-pacs",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": AE_TITLE,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpServerEnabled": True,
        "DicomServerEnabled": True,
        "DicomCheckCalledAet": False,
        # MedAI sends its results (SR, heat-map capture) back with its own calling AE title,
        # registered as the modality "medai" or not.
        "DicomAlwaysAllowStore": True,
        "DicomCheckModalityHost": False,
        "DicomModalities": modalities,
        "DicomScuTimeout": 20,
        "StableAge": 1,
        "ConcurrentJobs": 2,
        "SaveJobs": False,
        "Plugins": [],
    }
    if DICOMWEB_PLUGIN.exists():
        config["Plugins"] = [str(DICOMWEB_PLUGIN)]
        config["DicomWeb"] = {"Enable": True, "Root": "/dicom-web/"}
        if dicomweb_servers:
            config["DicomWeb"]["Servers"] = dicomweb_servers
    elif dicomweb_servers:
        raise RuntimeError("orthanc-dicomweb is missing: bin/test installs it")
    return config


@contextmanager
def orthanc_running(
    folder: Path,
    *,
    medai: tuple[str, str, int] | None = None,
    dicomweb_servers: dict[str, dict[str, Any]] | None = None,
    timeout: float = 30.0,
) -> Iterator[Orthanc]:
    """Start a private Orthanc with its files under ``folder``; ``medai`` (AE title, host,
    port) is registered as the modality ``medai``, and ``dicomweb_servers`` as the DICOMweb
    plugin's ``DicomWeb.Servers`` (name -> {"Url": ..., "HttpHeaders": ...}). Stopped (and
    waited for) on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = free_port(), free_port()
    modalities = {"medai": list(medai)} if medai else {}
    config = folder / "orthanc.json"
    config.write_text(
        json.dumps(
            _config(
                folder,
                http_port=http_port,
                dicom_port=dicom_port,
                modalities=modalities,
                dicomweb_servers=dicomweb_servers,
            )
        )
    )
    log = folder / "orthanc.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [ORTHANC, str(config)], stdout=out, stderr=subprocess.STDOUT, cwd=folder
        )
    pacs = Orthanc(
        url=f"http://127.0.0.1:{http_port}",
        http_port=http_port,
        dicom_port=dicom_port,
        process=process,
        log=log,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"Orthanc exited at start:\n{log.read_text()[-3000:]}")
            try:
                pacs.get("/system")
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"Orthanc did not start:\n{log.read_text()[-3000:]}"
                    ) from exc
                time.sleep(0.1)
        yield pacs
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
