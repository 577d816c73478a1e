"""The DICOM receiver over TLS: with a certificate it speaks TLS only; with a CA it requires
a client certificate the CA signed. Certificates come from a throwaway CA made in the test;
the sender is dcmtk's echoscu with TLS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.management import CommandError, call_command

from diagnosis.pacs.receiver import Receiver, TlsConfigError, tls_server_context
from tests.diagnosis.pacs.conftest import free_port
from tests.support.dcmtk import dcmtk_run
from tests.support.tls import TestAuthority

pytestmark = pytest.mark.usefixtures("dcmtk")


@pytest.fixture
def authority(tmp_path) -> TestAuthority:
    return TestAuthority(tmp_path)


def _listening(context) -> Iterator[int]:
    port = free_port()
    receiver = Receiver(ae_title="MEDAI", allow=["ECHOSCU"], ssl_context=context)
    receiver.start(host="127.0.0.1", port=port, block=False)
    try:
        yield port
    finally:
        receiver.stop()


@pytest.fixture
def mutual_tls(authority) -> Iterator[int]:
    server = authority.issue("medai-receiver", server=True)
    context = tls_server_context(
        cert=str(server.cert), key=str(server.key), ca=str(authority.pem.cert)
    )
    yield from _listening(context)


@pytest.fixture
def server_tls(authority) -> Iterator[int]:
    server = authority.issue("medai-receiver", server=True)
    yield from _listening(tls_server_context(cert=str(server.cert), key=str(server.key)))


def echo(port: int, *tls: str):
    return dcmtk_run("echoscu", *tls, "-aet", "ECHOSCU", "-aec", "MEDAI", "127.0.0.1", str(port))


def test_a_client_with_a_certificate_from_the_ca_verifies(mutual_tls, authority):
    client = authority.issue("pacs", server=False)
    ca = str(authority.pem.cert)
    result = echo(mutual_tls, "+tls", str(client.key), str(client.cert), "+cf", ca)
    assert result.returncode == 0, result.stderr


def test_a_plain_client_against_a_tls_listener_fails(mutual_tls):
    assert echo(mutual_tls).returncode != 0


def test_a_client_without_a_certificate_is_refused_when_a_ca_is_set(mutual_tls, authority):
    result = echo(mutual_tls, "+tla", "+cf", str(authority.pem.cert))
    assert result.returncode != 0


def test_a_client_certificate_from_another_ca_is_refused(mutual_tls, authority, tmp_path):
    other = TestAuthority(tmp_path / "other", name="Another CA").issue("intruder", server=False)
    ca = str(authority.pem.cert)
    result = echo(mutual_tls, "+tls", str(other.key), str(other.cert), "+cf", ca)
    assert result.returncode != 0


def test_without_a_ca_any_tls_client_verifies_the_server(server_tls, authority):
    result = echo(server_tls, "+tla", "+cf", str(authority.pem.cert))
    assert result.returncode == 0, result.stderr
    # The client checks the server against its CA: an unknown CA is not trusted.
    assert echo(server_tls, "+tla").returncode != 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "a.crt"], "--tls-cert and --tls-key go together"),
        (["--tls-ca", "ca.crt"], "--tls-cert and --tls-key go together"),
        (["--tls-cert", "/nonexistent.crt", "--tls-key", "/nonexistent.key"], "not found"),
    ],
)
def test_bad_tls_arguments_are_refused(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("dicom_listen", "--port", "11112", *args)


def test_a_key_that_does_not_match_the_certificate_is_refused(authority):
    one, two = authority.issue("one", server=True), authority.issue("two", server=True)
    with pytest.raises(TlsConfigError, match="key does not match"):
        tls_server_context(cert=str(one.cert), key=str(two.key))
