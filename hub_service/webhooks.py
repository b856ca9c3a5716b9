"""Webhook callbacks when a job ends: signed, and never aimed inside the Hub's network.

The body is the job's JSON; ``X-Notebook-Jobs-Signature: sha256=<hex>`` is the
HMAC-SHA256 of the body with the service's webhook secret (GitHub's scheme, so existing
verifiers work). Delivery is retried with backoff and never blocks the job's ending.

A callback URL is chosen by a user, but the POST comes from the service, from inside
the deployment: left alone it reaches the proxy's API, the Hub's, a cloud metadata
endpoint. So every address a callback's host resolves to must be globally routable
(no loopback, private, link-local -- where the metadata endpoints live -- shared,
multicast, reserved or unspecified address), unless it falls in a range an admin
allowed (:attr:`Webhooks.allowed_networks`); an IPv6 address that carries an IPv4 one
(IPv4-mapped or -compatible, 6to4, NAT64, Teredo: :func:`embedded_ipv4`) must pass as
that IPv4 address as well. The check runs twice: at submit, so the
user gets a 400 that says why, and at each delivery attempt, on the addresses the
connection then uses -- the resolver that checks them is the one the HTTP client
connects with, so a name that resolves elsewhere by delivery time (DNS rebinding)
cannot slip an internal address past the check.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import re
import socket
from typing import Iterable, Optional
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.netutil import DefaultLoopResolver, Resolver
from traitlets import Float, Integer, List, Unicode, validate
from traitlets.config import LoggingConfigurable

SIGNATURE_HEADER = "X-Notebook-Jobs-Signature"

_ALLOW_ENTRY = re.compile(r"^(?P<net>[^/\s]+(?:/\d{1,3})?)(?::(?P<port>\d{1,5}))?$")


class CallbackRefused(ValueError):
    """A callback URL the service will not call; the message says why."""


def sign(body: bytes, secret: str) -> str:
    """The signature header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def parse_allowed(entry: str) -> tuple:
    """``"10.1.0.0/16"`` or ``"127.0.0.1/32:8080"`` (a range, on one port) as (network, port or None)."""
    m = _ALLOW_ENTRY.match(entry.strip())
    net = m and m.group("net")
    if m and m.group("port") and "/" not in net:
        net = None  # "::1:8080" would be ambiguous: a port needs the range's prefix length
    try:
        network = ipaddress.ip_network(net, strict=False) if net else None
    except ValueError:
        network = None
    if network is None:
        raise ValueError(f"{entry!r} is not an address range like '10.0.0.0/8' or '127.0.0.1/32:8080'")
    return network, int(m.group("port")) if m.group("port") else None


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def embedded_ipv4(ip) -> list:
    """The IPv4 addresses an IPv6 address carries, as ``(form, IPv4Address)``: IPv4-mapped
    (``::ffff:a.b.c.d``), IPv4-compatible (``::a.b.c.d``), 6to4 (``2002:AABB:CCDD::/48``),
    NAT64 (``64:ff9b::/96`` and the local-use ``64:ff9b:1::/48``, the IPv4 in the last 32
    bits) and Teredo (``2001::/32``: its server, bits 32-63, and its client, the last 32
    bits inverted). Packets to these reach, or are made to reach, the IPv4 address:
    ``[2002:7f00:1::]`` is 127.0.0.1 to a host that relays 6to4 itself."""
    if ip.version != 6:
        return []
    if ip.ipv4_mapped is not None:
        return [("IPv4-mapped", ip.ipv4_mapped)]
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:  # (:: and ::1 are themselves)
        return [("IPv4-compatible", low32)]
    if ip.sixtofour is not None:
        return [("6to4", ip.sixtofour)]
    if any(ip in net for net in _NAT64):
        return [("NAT64", low32)]
    if ip.teredo is not None:
        server, client = ip.teredo
        return [("Teredo server", server), ("Teredo client", client)]
    return []


def _kind(ip) -> Optional[str]:
    """What kind of internal address ``ip`` is by itself, or None for a public one."""
    for attr, what in (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address (cloud metadata endpoints live there)"),
        ("is_multicast", "a multicast address"),
        ("is_reserved", "a reserved address"),
        ("is_private", "a private address"),
    ):
        if getattr(ip, attr):
            return what
    if not ip.is_global:
        return "not a globally routable address"
    return None


def _allows(allowed: Iterable[tuple], ip, port: Optional[int]) -> bool:
    return any(ip.version == net.version and ip in net and (p is None or p == port) for net, p in allowed)


def why_blocked(address: str, allowed: Iterable[tuple] = (), port: Optional[int] = None) -> Optional[str]:
    """What kind of internal address ``address`` is, or None when a callback may go there.

    An IPv4 address that an IPv6 address embeds (:func:`embedded_ipv4`) is judged as
    that IPv4 address would be, so every form of 127.0.0.1 is a loopback address; the
    IPv6 address must pass as well, except an IPv4-mapped one, which is its IPv4
    address. ``allowed`` (with the ``port``) opens ranges, to each address on its own.
    """
    allowed = list(allowed)
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    embedded = embedded_ipv4(ip)
    for form, v4 in embedded:
        what = None if _allows(allowed, v4, port) else _kind(v4)
        if what:
            return what if form == "IPv4-mapped" else f"an IPv6 address that embeds {v4} ({form}), which is {what}"
    if embedded and embedded[0][0] == "IPv4-mapped":  # ::ffff:127.0.0.1 is 127.0.0.1, and nothing else
        return None
    return None if _allows(allowed, ip, port) else _kind(ip)


def check_addresses(host: str, port: int, addresses: Iterable[str], allowed: Iterable[tuple]) -> None:
    """Raise CallbackRefused unless every address, and every IPv4 address one embeds, is public or in an
    allowed range (and port)."""
    addresses = list(addresses)
    allowed = list(allowed)
    if not addresses:
        raise CallbackRefused(f"callback host {host!r} does not resolve to any address")
    for address in addresses:
        what = why_blocked(address, allowed, port)
        if what:
            shown = host if host == address else f"{host!r} ({address})"
            raise CallbackRefused(
                f"callback_url may not point inside this deployment: {shown} is {what}; an admin can "
                "allow a range with Webhooks.allowed_networks"
            )


def host_port(url: str) -> tuple:
    """(host, port) of an http(s) URL; CallbackRefused when it has none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise CallbackRefused(f"callback_url {url!r} is not a valid URL: {e}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackRefused(f"callback_url {url!r} must be an http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        raise CallbackRefused("callback_url may not carry a user name or password")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


class _CheckingResolver(Resolver):
    """Resolves like the default resolver, then refuses (or filters out) internal addresses.

    The HTTP client connects to exactly what this returns, so the check and the
    connection see the same addresses.
    """

    def initialize(self, allowed: list):
        self.allowed = allowed
        self.inner = DefaultLoopResolver()

    async def resolve(self, host: str, port: int, family=socket.AF_UNSPEC):
        resolved = await self.inner.resolve(host, port, family)
        check_addresses(host, port, [sockaddr[0] for _, sockaddr in resolved], self.allowed)
        return resolved


class Webhooks(LoggingConfigurable):
    """Where callbacks may go, and their delivery."""

    allowed_networks = List(
        Unicode(),
        help="""Address ranges callbacks may reach although they are not public, e.g.
        ["10.20.0.0/16"] for an intranet receiver, or ["127.0.0.1/32:9000"] for one port of
        this machine (a range with ':PORT' allows that port only). Everything else that is
        loopback, private, link-local (cloud metadata), shared, multicast, reserved or
        unspecified is refused: at submit with a 400, and again at each delivery.""",
    ).tag(config=True)

    @validate("allowed_networks")
    def _valid_allowed(self, proposal):
        for entry in proposal["value"]:
            parse_allowed(entry)  # raises ValueError naming the bad entry
        return proposal["value"]

    attempts = Integer(3, help="Delivery attempts per callback (1 s, 2 s, ... apart).").tag(config=True)
    timeout = Float(10.0, help="Seconds one delivery attempt may take.").tag(config=True)

    def _allowed(self) -> list:
        return [parse_allowed(e) for e in self.allowed_networks]

    async def check(self, url: str) -> None:
        """Raise CallbackRefused unless ``url`` is http(s) and its host resolves only to callable addresses."""
        host, port = host_port(url)
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as e:
            raise CallbackRefused(f"callback host {host!r} does not resolve: {e}") from None
        check_addresses(host, port, {info[4][0] for info in infos}, self._allowed())

    async def deliver(self, url: str, payload: dict, secret: str) -> bool:
        """POST ``payload`` to ``url``, signed with ``secret``; True once a 2xx answer came back."""
        body = json.dumps(payload, allow_nan=False).encode()  # strict JSON, as the API
        headers = {"Content-Type": "application/json", "User-Agent": "notebook-jobs"}
        if secret:
            headers[SIGNATURE_HEADER] = sign(body, secret)
        client = AsyncHTTPClient(force_instance=True, resolver=_CheckingResolver(allowed=self._allowed()))
        try:
            for attempt in range(self.attempts):
                try:
                    host_port(url)
                    await client.fetch(HTTPRequest(url, "POST", headers, body, request_timeout=self.timeout,
                                                   follow_redirects=False))
                    return True
                except CallbackRefused as e:
                    self.log.warning("webhook %s refused: %s", url, e)
                    return False
                except (HTTPClientError, OSError) as e:
                    self.log.warning("webhook %s attempt %d failed: %s", url, attempt + 1, e)
                if attempt + 1 < self.attempts:
                    await asyncio.sleep(2**attempt)
        finally:
            client.close()
        return False
