"""The client's IP address, as throttling and the audit log see it.

Behind a reverse proxy every connection comes from the proxy. ``X-Forwarded-For`` is
believed only when the connecting peer is one of ``ATIENDE_TRUSTED_PROXIES``; then the
address is the right-most one in the header that is not itself a trusted proxy (each
proxy appends the address it saw, so entries left of the last untrusted one could have
been written by the client and are ignored).
"""

from __future__ import annotations

import ipaddress

from fastapi import Request

from bot.settings import IpNetwork

UNKNOWN = "unknown"


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address: str, networks: tuple[IpNetwork, ...]) -> bool:
    parsed = _address(address)
    return parsed is not None and any(parsed in network for network in networks)


def client_ip(request: Request, trusted: tuple[IpNetwork, ...]) -> str:
    """The peer's address, or the forwarded client's when the peer is a trusted proxy."""
    peer = request.client.host if request.client else UNKNOWN
    if not trusted or not _trusted(peer, trusted):
        return peer
    forwarded = [
        part.strip()
        for header in request.headers.getlist("x-forwarded-for")
        for part in header.split(",")
        if part.strip()
    ]
    client = peer
    for hop in reversed(forwarded):
        if _address(hop) is None:
            break  # garbage in the chain: trust nothing further left
        client = hop
        if not _trusted(hop, trusted):
            break
    return client
