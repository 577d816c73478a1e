"""The client address behind N trusted proxies: real chains, forged and malformed headers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from medai_site.core.client_address import client_ip_resolve

LB = "10.0.0.5"


def test_no_proxy_uses_the_peer_and_ignores_any_header():
    assert client_ip_resolve(remote_addr="198.51.100.9", forwarded_for=None, proxy_count=0) == (
        "198.51.100.9"
    )
    # Reached directly, a client's own X-Forwarded-For must not choose its address.
    assert (
        client_ip_resolve(remote_addr="198.51.100.9", forwarded_for="1.2.3.4", proxy_count=0)
        == "198.51.100.9"
    )


def test_one_proxy_takes_the_entry_it_appended():
    assert client_ip_resolve(remote_addr=LB, forwarded_for="203.0.113.7", proxy_count=1) == (
        "203.0.113.7"
    )
    # A forged entry in front of the real one is ignored.
    forged = "1.2.3.4, 203.0.113.7"
    assert client_ip_resolve(remote_addr=LB, forwarded_for=forged, proxy_count=1) == "203.0.113.7"


def test_two_proxies_take_the_second_entry_from_the_right():
    chain = "6.6.6.6, 203.0.113.7, 10.0.0.9"  # forged, client (by the edge), edge (by the LB)
    assert client_ip_resolve(remote_addr=LB, forwarded_for=chain, proxy_count=2) == "203.0.113.7"


def test_a_header_shorter_than_the_trusted_chain_falls_back_to_the_peer():
    # With two proxies a one-entry header did not pass both: its content may be invented.
    assert client_ip_resolve(remote_addr=LB, forwarded_for="1.2.3.4", proxy_count=2) == LB
    assert client_ip_resolve(remote_addr=LB, forwarded_for="", proxy_count=1) == LB
    assert client_ip_resolve(remote_addr=LB, forwarded_for=None, proxy_count=1) == LB


def test_malformed_entries_never_become_the_address():
    for header in ("not-an-ip", "1.2.3.4, <script>", "1.2.3.4,", "999.1.1.1", "1.2.3.4 5.6.7.8"):
        assert client_ip_resolve(remote_addr=LB, forwarded_for=header, proxy_count=1) == LB


def test_ports_and_ipv6_are_normalised():
    assert (
        client_ip_resolve(remote_addr=LB, forwarded_for="203.0.113.7:4711", proxy_count=1)
        == "203.0.113.7"
    )
    assert (
        client_ip_resolve(remote_addr=LB, forwarded_for="[2001:DB8::1]:443", proxy_count=1)
        == "2001:db8::1"
    )
    assert (
        client_ip_resolve(remote_addr=LB, forwarded_for="2001:db8::1", proxy_count=1)
        == "2001:db8::1"
    )


addresses = st.ip_addresses().map(str)


@settings(deadline=None)  # a loaded CI machine must not turn slowness into a failure
@given(
    forged=st.lists(st.one_of(addresses, st.text(max_size=20)), max_size=6),
    client=addresses,
    proxies=st.lists(addresses, min_size=0, max_size=4),
)
def test_whatever_a_client_prepends_the_trusted_hops_decide(forged, client, proxies):
    # The client sends "forged..." itself; the first proxy appends the client's address, each
    # further proxy appends the previous proxy's; the last one connects to us.
    chain = [*forged, client, *proxies[:-1]] if proxies else [*forged]
    peer = proxies[-1] if proxies else client
    header = ", ".join(chain) if chain else None
    resolved = client_ip_resolve(remote_addr=peer, forwarded_for=header, proxy_count=len(proxies))
    assert resolved == str(__import__("ipaddress").ip_address(client))
