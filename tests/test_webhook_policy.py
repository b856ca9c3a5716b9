"""Where a webhook may go: the address checks, on the resolver and checker alone (no traffic leaves)."""

import asyncio
import ipaddress

import pytest

from hub_service.webhooks import (
    CallbackRefused,
    Webhooks,
    _CheckingResolver,
    check_addresses,
    embedded_ipv4,
    parse_allowed,
    why_blocked,
)


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


# -- IPv4 inside IPv6: every embedded address is judged as the IPv4 address itself -----------------

#: (IPv6 address, the form, the IPv4 it carries, what that IPv4 is); none is ever connected to
EMBEDDED = [
    ("2002:7f00:1::", "6to4", "127.0.0.1", "loopback"),
    ("2002:a9fe:a9fe:1::5", "6to4", "169.254.169.254", "link-local"),
    ("2002:a00:1::", "6to4", "10.0.0.1", "private"),
    ("64:ff9b::7f00:1", "NAT64", "127.0.0.1", "loopback"),
    ("64:ff9b::a9fe:a9fe", "NAT64", "169.254.169.254", "link-local"),
    ("64:ff9b:1::c0a8:101", "NAT64", "192.168.1.1", "private"),  # the local-use prefix
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo client", "127.0.0.1", "loopback"),  # client bits inverted
    ("2001:0:7f00:1:8000:63bf:f7f7:f7f7", "Teredo server", "127.0.0.1", "loopback"),
    ("2001:0:808:808::5601:5601", "Teredo client", "169.254.169.254", "link-local"),
    ("::ffff:127.0.0.1", "IPv4-mapped", "127.0.0.1", "loopback"),
    ("::ffff:a9fe:a9fe", "IPv4-mapped", "169.254.169.254", "link-local"),
    ("::127.0.0.1", "IPv4-compatible", "127.0.0.1", "loopback"),
    ("::10.1.2.3", "IPv4-compatible", "10.1.2.3", "private"),
    ("::100.64.0.1", "IPv4-compatible", "100.64.0.1", "not a globally routable"),
]


@pytest.mark.parametrize("address, form, ipv4, kind", EMBEDDED)
def test_an_internal_ipv4_address_inside_an_ipv6_address_is_refused_naming_it(address, form, ipv4, kind):
    assert (form, ipaddress.IPv4Address(ipv4)) in embedded_ipv4(ipaddress.ip_address(address))
    what = why_blocked(address)
    assert kind in what and (form == "IPv4-mapped" or f"embeds {ipv4} ({form})" in what), what
    with pytest.raises(CallbackRefused, match="Webhooks.allowed_networks"):
        check_addresses("h", 80, [address], [])
    # a range allowed for the IPv6 address alone does not open the IPv4 address inside it
    with pytest.raises(CallbackRefused, match=kind):
        check_addresses("h", 80, [address], [parse_allowed(f"{address}/128")])


def test_teredo_carries_its_server_in_bits_32_to_63_and_its_client_inverted_in_the_last_32():
    assert embedded_ipv4(ipaddress.ip_address("2001:0:4136:e378:8000:63bf:3fff:fdd2")) == [
        ("Teredo server", ipaddress.IPv4Address("65.54.227.120")),
        ("Teredo client", ipaddress.IPv4Address("192.0.2.45"))]  # RFC 4380's example


@pytest.mark.parametrize("address", [
    "2606:4700:4700::1111", "2001:4860:4860::8888", "2a00:1450:4001:80b::200e", "2620:fe::fe",
    "::ffff:8.8.8.8",  # IPv4-mapped public: the public IPv4 address
])
def test_public_ipv6_addresses_still_pass(address):
    assert why_blocked(address) is None
    check_addresses("h", 443, [address], [])


@pytest.mark.parametrize("address", ["2002:808:808::", "64:ff9b::808:808", "2001:0:808:808::f7f7:f7f7"])
def test_a_public_ipv4_inside_is_no_reason_to_refuse(address):
    # (whether the IPv6 range itself is public is Python's ipaddress's call, and varies by its version)
    assert "embeds" not in (why_blocked(address) or "")


def test_an_allowed_ipv4_range_opens_its_embedded_forms_only_where_the_ipv6_address_is_allowed_too():
    nat64 = "64:ff9b::a14:304"  # 10.20.3.4
    with pytest.raises(CallbackRefused, match=r"embeds 10\.20\.3\.4 \(NAT64\), which is a private"):
        check_addresses("h", 80, [nat64], [parse_allowed("64:ff9b::/96")])
    with pytest.raises(CallbackRefused, match="reserved"):  # the NAT64 prefix is not public by itself
        check_addresses("h", 80, [nat64], [parse_allowed("10.20.0.0/16")])
    check_addresses("h", 80, [nat64], [parse_allowed("10.20.0.0/16"), parse_allowed("64:ff9b::/96")])
    check_addresses("h", 80, ["::ffff:10.20.3.4"], [parse_allowed("10.20.0.0/16")])  # mapped: the IPv4 address
    with pytest.raises(CallbackRefused, match="loopback"):  # an allowed port is that port only
        check_addresses("h", 81, ["::ffff:127.0.0.1"], [parse_allowed("127.0.0.1/32:80")])


@pytest.mark.parametrize("address", [a for a, *_ in EMBEDDED])
def test_the_delivery_resolver_refuses_every_embedded_form_too(address):
    with pytest.raises(CallbackRefused, match="loopback|link-local|private|not a globally routable"):
        asyncio.run(_CheckingResolver(allowed=[]).resolve(address, 9911))


# -- through the real Hub: submit and dry run refuse each form, so nothing is ever delivered ------

@pytest.mark.parametrize("address, form, ipv4, kind", EMBEDDED)
@pytest.mark.parametrize("dry_run", [False, True])
def test_submit_and_dry_run_refuse_a_callback_to_each_embedded_form(alice, address, form, ipv4, kind, dry_run):
    url = f"http://[{address}]:9911/hook"  # 9911: no port the session allows
    before = [j["id"] for j in alice.get("jobs", params={"limit": 200}).json()["jobs"]]
    # (GPUs this Hub does not have: were the callback let through, the submit would still store no job to call back)
    r = alice.post("jobs", params={"dry_run": 1} if dry_run else None,
                   json={"code": "print(1)", "callback_url": url, "resources": {"gpu": 1000}})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "callback_refused" and kind in error["message"], error
    assert ipv4 in error["message"] or form == "IPv4-mapped", error
    assert [j["id"] for j in alice.get("jobs", params={"limit": 200}).json()["jobs"]] == before


def test_submit_refuses_the_6to4_form_of_the_allowed_receivers_address_on_another_port(alice, webhook_port):
    r = alice.post("jobs", json={"code": "print(1)", "callback_url": f"http://[2002:7f00:1::]:{webhook_port + 1}/",
                                 "resources": {"gpu": 1000}})  # (no job stored, whatever the callback check says)
    assert r.status_code == 400 and "embeds 127.0.0.1 (6to4), which is a loopback address" in r.text, r.text
