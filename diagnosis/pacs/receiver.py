"""The DICOM C-STORE receiver (SCP): verification (C-ECHO) and storage of image SOP classes.

Each association's instances are spooled to a private temporary folder as they arrive. When
the sender releases the association, each study in it waits until no instance of it has come
from that sender for MEDAI_DICOM_STUDY_SETTLE_SECONDS (a PACS may send one study over several
associations: Orthanc opens one per transfer syntax), then is filed once (study_receive:
patient matching, then the upload's intake, one classification job per study and model). An
aborted association files nothing: the sender will send it again.
"""

from __future__ import annotations

import logging
import shutil
import ssl
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from pydicom.uid import UID
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, StoragePresentationContexts, evt
from pynetdicom.sop_class import Verification

from diagnosis.pacs.services import StudyReceipt, received_file, study_receive
from diagnosis.services import MAX_FILES_PER_UPLOAD, UploadTooLarge

logger = logging.getLogger(__name__)

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700  # PS3.4 Table B.2-1: Refused, out of resources
CANNOT_UNDERSTAND = 0xC000  # PS3.4 Table B.2-1: Error, cannot understand
#: How long a closed connection's instances wait for the association's release to take them.
CLOSE_GRACE_SECONDS = 30.0


def image_storage_classes() -> list[str]:
    """The storage SOP classes the receiver accepts: images only (no reports, waveforms or
    documents, which the intake would refuse anyway)."""
    return [
        str(cx.abstract_syntax)
        for cx in StoragePresentationContexts
        if "Image Storage" in UID(str(cx.abstract_syntax)).name
    ]


@dataclass
class _Pending:
    folder: Path
    calling_ae: str
    files: list[Path] = field(default_factory=list)
    timer: threading.Timer | None = None


@dataclass
class _Batch:
    folder: Path
    calling_ae: str
    files: list[tuple[Path, str]] = field(default_factory=list)
    filed: bool = False


class TlsConfigError(ValueError):
    """The TLS certificate, key or CA could not be loaded (the message says which)."""


def tls_server_context(*, cert: str, key: str, ca: str = "") -> ssl.SSLContext:
    """A server TLS context (TLS 1.2 or later) with ``cert`` and ``key``; with ``ca``, clients
    must present a certificate that ``ca`` signed (mutual TLS). TlsConfigError otherwise."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=cert, keyfile=key)
    except FileNotFoundError as exc:
        raise TlsConfigError(f"TLS certificate or key file not found: {exc.filename}") from None
    except ssl.SSLError as exc:
        raise TlsConfigError(
            f"TLS certificate {cert} and key {key} could not be loaded (not PEM, or the key "
            f"does not match the certificate): {exc.reason}"
        ) from None
    if ca:
        try:
            context.load_verify_locations(cafile=ca)
        except FileNotFoundError:
            raise TlsConfigError(f"TLS CA file not found: {ca}") from None
        except ssl.SSLError as exc:
            raise TlsConfigError(f"TLS CA file {ca} could not be loaded: {exc.reason}") from None
        # Associations from a client without a certificate signed by the CA fail the handshake.
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class Receiver:
    """A pynetdicom Application Entity that files received studies through study_receive;
    ``allow`` lists the calling AE titles accepted (empty: any); with ``ssl_context`` it
    speaks DICOM over TLS only (PS3.15 Annex B.9)."""

    def __init__(
        self,
        *,
        ae_title: str,
        allow: list[str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.ssl_context = ssl_context
        self.ae = AE(ae_title=ae_title)
        self.ae.add_supported_context(Verification)
        for sop_class in image_storage_classes():
            self.ae.add_supported_context(sop_class, ALL_TRANSFER_SYNTAXES)
        # An association from any other AE title is rejected (A-ASSOCIATE-RJ, calling AE
        # title not recognised) before a byte of data is accepted.
        self.ae.require_calling_aet = list(allow or [])
        self._batches: dict[int, _Batch] = {}
        self._pending: dict[tuple[str, str], _Pending] = {}
        self.settle_seconds = float(settings.MEDAI_DICOM_STUDY_SETTLE_SECONDS)
        self._lock = threading.Lock()
        self.receipts: list[StudyReceipt] = []
        self.server: Any = None

    def start(self, *, host: str, port: int, block: bool) -> Any:
        """Listen on ``host``:``port``; with ``block`` serve until interrupted."""
        handlers = [
            (evt.EVT_C_ECHO, self._echo),
            (evt.EVT_C_STORE, self._store),
            (evt.EVT_RELEASED, self._released),
            (evt.EVT_ABORTED, self._aborted),
            (evt.EVT_CONN_CLOSE, self._closed),
        ]
        self.server = self.ae.start_server(
            (host, port), block=block, evt_handlers=handlers, ssl_context=self.ssl_context
        )
        return self.server

    def stop(self) -> None:
        """Stop listening, then file every study still settling."""
        if self.server is not None:
            self.server.shutdown()
        with self._lock:
            keys = list(self._pending)
            for key in keys:
                timer = self._pending[key].timer
                if timer is not None:
                    timer.cancel()
        for key in keys:
            self._settled(key)

    def _echo(self, event: Any) -> int:
        return SUCCESS

    def _batch(self, event: Any) -> _Batch:
        key = id(event.assoc)
        with self._lock:
            if key not in self._batches:
                folder = Path(tempfile.mkdtemp(prefix="medai-dicom-"))
                calling = event.assoc.requestor.ae_title
                self._batches[key] = _Batch(folder=folder, calling_ae=str(calling).strip())
            return self._batches[key]

    def _store(self, event: Any) -> int:
        batch = self._batch(event)
        if len(batch.files) >= MAX_FILES_PER_UPLOAD:
            return OUT_OF_RESOURCES
        try:
            study_uid = str(event.dataset.get("StudyInstanceUID", "") or "")
            data = event.encoded_dataset(include_meta=True)
        except Exception:  # a dataset pynetdicom cannot decode is the sender's error
            logger.warning("C-STORE from %s: dataset could not be decoded", batch.calling_ae)
            return CANNOT_UNDERSTAND
        if len(data) > settings.DIAGNOSIS_MAX_FILE_BYTES:
            return OUT_OF_RESOURCES
        path = batch.folder / f"{len(batch.files) + 1:05d}.dcm"
        path.write_bytes(data)
        batch.files.append((path, study_uid))
        return SUCCESS

    def _take(self, event: Any) -> _Batch | None:
        with self._lock:
            return self._batches.pop(id(event.assoc), None)

    def _aborted(self, event: Any) -> None:
        batch = self._take(event)
        if batch is not None:
            shutil.rmtree(batch.folder, ignore_errors=True)

    def _closed(self, event: Any) -> None:
        """The connection closed. pynetdicom reports that from its DUL thread, and a normal
        release from the association's thread, in either order: after sending the release
        response the association thread may run _released only after the sender has closed
        the connection (seen under load: a released study discarded here, lost without a
        word). So a batch is discarded only if no release took it within the grace period
        (a connection dropped mid-study); an abort discards at once (_aborted)."""
        with self._lock:
            batch = self._batches.get(id(event.assoc))
        if batch is None:
            return
        timer = threading.Timer(CLOSE_GRACE_SECONDS, self._discard, [id(event.assoc), batch])
        timer.daemon = True
        timer.start()

    def _discard(self, key: int, batch: _Batch) -> None:
        with self._lock:
            if self._batches.get(key) is not batch:
                return  # released (and filed) since, or another association's now
            del self._batches[key]
        logger.warning(
            "DICOM association from %s closed without a release: %d instance(s) discarded",
            batch.calling_ae,
            len(batch.files),
        )
        shutil.rmtree(batch.folder, ignore_errors=True)

    def _released(self, event: Any) -> None:
        batch = self._take(event)
        if batch is None:
            return
        try:
            for path, study_uid in batch.files:
                key = (batch.calling_ae, study_uid)
                with self._lock:
                    pending = self._pending.get(key)
                    if pending is None:
                        folder = Path(tempfile.mkdtemp(prefix="medai-study-"))
                        pending = self._pending[key] = _Pending(folder, batch.calling_ae)
                    target = pending.folder / f"{len(pending.files) + 1:05d}.dcm"
                    path.rename(target)
                    pending.files.append(target)
            with self._lock:
                for key in {(batch.calling_ae, uid) for _, uid in batch.files}:
                    pending = self._pending[key]
                    if pending.timer is not None:
                        pending.timer.cancel()
                    pending.timer = threading.Timer(self.settle_seconds, self._settled, [key])
                    pending.timer.daemon = True
                    pending.timer.start()
        finally:
            shutil.rmtree(batch.folder, ignore_errors=True)

    def _settled(self, key: tuple[str, str]) -> None:
        with self._lock:
            pending = self._pending.pop(key, None)
        if pending is None:
            return
        close_old_connections()
        handles = [path.open("rb") for path in pending.files]
        try:
            files = [received_file(h, name=f"IM{n:04d}.dcm") for n, h in enumerate(handles, 1)]
            self.receipts.append(study_receive(files=files, calling_ae=pending.calling_ae))
        except UploadTooLarge as exc:
            logger.warning("DICOM study from %s refused: %s", pending.calling_ae, exc.message)
        except Exception:
            # One bad study must not stop the listener, nor the other studies.
            logger.exception("DICOM study from %s could not be filed", pending.calling_ae)
        finally:
            for handle in handles:
                handle.close()
            shutil.rmtree(pending.folder, ignore_errors=True)
            # The timer's thread ends here; so must its database connection.
            connection.close()
