"""Where a webhook may be delivered: the URL's host resolved once (through an injectable resolver),
every address checked, and the connection made to the checked address (never resolved again, so a
DNS answer that changes in between cannot point it elsewhere). Loopback, link-local, private, CGNAT,
multicast, unspecified, reserved and cloud metadata addresses are refused unless the operator allows
private networks (``BOTRANKS_WEBHOOKS_ALLOW_PRIVATE=1``)."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
#: host, port → the addresses it resolves to
Resolver = Callable[[str, int], list[str]]

#: the operator's setting that lets webhooks reach loopback and private networks (never metadata)
ALLOW_PRIVATE = "BOTRANKS_WEBHOOKS_ALLOW_PRIVATE"
MAX_URL = 2000
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(ValueError):
    """A URL or address a webhook may not be delivered to (the message says why)."""


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    #: the path and query sent in the request line
    target: str
    #: the checked address to connect to
    address: str


def allow_private(env: dict[str, str] | None = None) -> bool:
    """``BOTRANKS_WEBHOOKS_ALLOW_PRIVATE`` (1, true, yes, on) in ``env`` (default: this process's)."""
    return (os.environ if env is None else env).get(ALLOW_PRIVATE, "").strip().lower() in ("1", "true", "yes", "on")


def system_resolver(host: str, port: int) -> list[str]:
    """The system's answer (every address, IPv4 and IPv6)."""
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def check_url(url: str) -> tuple[str, str, int, str]:
    """The URL's scheme, host, port and request target, or Refused (nothing is resolved here)."""
    if len(url) > MAX_URL:
        raise Refused(f"the URL is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise Refused(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise Refused("the URL must start with https:// or http://")
    if not parts.hostname:
        raise Refused("the URL has no host")
    if parts.username or parts.password:
        raise Refused("the URL must not carry a user name or password")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), target


def forbidden(address: Address) -> str | None:
    """Why a delivery may not go to ``address`` without the private-network setting (None: it may)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return forbidden(address.ipv4_mapped)
    if isinstance(address, ipaddress.IPv6Address) and address in NAT64:
        return forbidden(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    checks = (
        (address in METADATA, "a cloud metadata address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_unspecified, "the unspecified address"),
        (isinstance(address, ipaddress.IPv4Address) and address in CGNAT, "a carrier-grade NAT address"),
        (address.is_private, "a private address"),
        (address.is_reserved or not address.is_global, "a reserved address"),
    )
    return next((why for bad, why in checks if bad), None)


def destination(url: str, resolver: Resolver = system_resolver, allow_private: bool = False) -> Destination:
    """Resolve ``url``'s host once and check every address; Refused names the reason. An IP literal
    is checked as it is. Every address must pass (a name that mixes public and private answers is
    refused), and the first one is the one to connect to."""
    scheme, host, port, target = check_url(url)
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        try:
            found = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolver(host, port)]
        except (OSError, UnicodeError, ValueError) as exc:
            raise Refused(f"{host} does not resolve: {exc}") from None
        if not found:
            raise Refused(f"{host} does not resolve")
    if not allow_private:
        for address in found:
            why = forbidden(address)
            if why and literal is not None:
                raise Refused(f"{host} is {why}: refused (BOTRANKS_WEBHOOKS_ALLOW_PRIVATE=1 allows it)")
            if why:
                raise Refused(
                    f"{host} resolves to {address}, {why}: refused (BOTRANKS_WEBHOOKS_ALLOW_PRIVATE=1 allows it)"
                )
    elif any(a in METADATA for a in found):
        raise Refused(f"{host} resolves to a cloud metadata address: always refused")
    return Destination(scheme, host, port, target, str(found[0]))
