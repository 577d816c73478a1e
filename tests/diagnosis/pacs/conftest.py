"""The receiver runs in a thread of the test process (its own database connections, so the
tests that use it commit: transactional_db)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from diagnosis.models import UnmatchedStudy
from diagnosis.pacs.receiver import Receiver
from diagnosis.pacs.services import received_file, study_receive
from tests.diagnosis.pacs.studies import study_files
from tests.support.dcmtk import dcmtk_installed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def model_in_service(db, users, tiny_artifact) -> Iterator[object]:
    """The tiny pneumonia model in service, so that a received study is classified (with none,
    its scans are stored and wait for one: tests/diagnosis/test_awaiting_model.py)."""
    from medai_site.registry.loader import clear_model_cache
    from medai_site.registry.models import ModelVersion
    from tests.diagnosis.model_versions import TASK, register_version

    # A test's own model (e.g. chest_model, with a contract) already in service stays so.
    active = ModelVersion.objects.filter(task=TASK, status="active").first()
    yield active or register_version(users, tiny_artifact)
    clear_model_cache()


@pytest.fixture
def dcmtk() -> None:
    if not dcmtk_installed():
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


@pytest.fixture
def waiting(db, tmp_path) -> UnmatchedStudy:
    """A two-instance study of ROE^JANE (ID EXT-77, born 1980-02-02) from PACS, waiting in
    the inbox (no patient matched it)."""
    paths = study_files(tmp_path, patient_id="EXT-77", name="ROE^JANE", birth_date="19800202")
    handles = [p.open("rb") for p in paths]
    try:
        receipt = study_receive(
            files=[received_file(h, name=h.name) for h in handles], calling_ae="PACS"
        )
    finally:
        for handle in handles:
            handle.close()
    assert receipt.unmatched is not None and receipt.upload is None
    return receipt.unmatched
