"""Where a webhook may go: the address checks, on the resolver and checker alone (no traffic leaves)."""

import asyncio

import pytest

from hub_service.webhooks import CallbackRefused, Webhooks, _CheckingResolver, check_addresses, parse_allowed, why_blocked


@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"), ("127.9.9.9", "loopback"), ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6 is the IPv4 address
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("fd00:ec2::254", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),  # cloud metadata endpoints
    ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("100.64.0.1", "not a globally routable"),  # carrier-grade NAT (shared) space
    ("192.0.2.1", "private"),  # documentation range
])
def test_internal_addresses_are_refused_and_say_what_they_are(address, kind):
    assert kind in why_blocked(address)
    with pytest.raises(CallbackRefused, match="Webhooks.allowed_networks"):
        check_addresses("h", 80, [address], [])


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    assert why_blocked(address) is None
    check_addresses("h", 443, [address], [])


def test_one_internal_address_among_public_ones_refuses_the_name():
    with pytest.raises(CallbackRefused, match="loopback"):
        check_addresses("rebind.example", 80, ["8.8.8.8", "127.0.0.1"], [])


def test_an_allowed_range_opens_only_that_range_and_port():
    allowed = [parse_allowed("10.20.0.0/16"), parse_allowed("127.0.0.1/32:9000")]
    check_addresses("h", 80, ["10.20.3.4"], allowed)
    check_addresses("h", 9000, ["127.0.0.1"], allowed)
    with pytest.raises(CallbackRefused):
        check_addresses("h", 9001, ["127.0.0.1"], allowed)  # another port of the same address
    with pytest.raises(CallbackRefused):
        check_addresses("h", 80, ["10.21.0.1"], allowed)


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "nonsense", "10.0.0.1:8080", "127.0.0.1/32:x"])
def test_a_bad_allowlist_entry_is_a_config_error(entry):
    with pytest.raises(Exception, match="address range"):
        Webhooks(allowed_networks=[entry])


@pytest.mark.parametrize("url, why", [
    ("ftp://example.org/x", "http"), ("http:///x", "http"), ("http://u:p@example.org/", "password"),
    ("http://localhost:8001/api/routes", "loopback"), ("http://[::1]/", "loopback"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://2130706433/", "loopback"),  # 127.0.0.1 as a decimal integer
    ("http://no-such-host.invalid/", "does not resolve"),
])
def test_submit_time_check_names_the_problem(url, why):
    with pytest.raises(CallbackRefused, match=why):
        asyncio.run(Webhooks().check(url))


def test_delivery_resolver_refuses_what_the_name_resolves_to_then():
    """The resolver the HTTP client connects with runs the check itself: no rebinding window."""
    resolver = _CheckingResolver(allowed=[])
    with pytest.raises(CallbackRefused, match="loopback"):
        asyncio.run(resolver.resolve("localhost", 80))
    allowed = _CheckingResolver(allowed=[parse_allowed("127.0.0.0/8:80"), parse_allowed("::1/128:80")])
    assert asyncio.run(allowed.resolve("localhost", 80))


def test_delivery_checks_again_and_reaches_only_an_allowed_receiver():
    """A URL that passed at submit (allowlist since narrowed, or a name since rebound) is checked again."""
    from tests.test_webhooks_metrics import start_receiver

    server, url, received = start_receiver()
    try:
        port = server.server_port
        assert asyncio.run(Webhooks(attempts=1).deliver(url, {"id": "x"}, "s")) is False
        assert not received
        assert asyncio.run(Webhooks(attempts=1, allowed_networks=[f"127.0.0.1/32:{port}"]).deliver(url, {"id": "x"}, "s"))
        assert len(received) == 1 and received[0][0]["X-Notebook-Jobs-Signature"].startswith("sha256=")
    finally:
        server.shutdown()
        server.server_close()
