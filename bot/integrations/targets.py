"""Where a webhook may point: checked by resolving the host, before any connection.

In production a target that resolves to a loopback, private, link-local, multicast or
otherwise reserved address is refused (a webhook must not become a way to reach the
servers behind the firewall), unless ``ATIENDE_WEBHOOKS_ALLOW_PRIVATE=true``. Outside
production anything resolvable is allowed (tests run their servers on 127.0.0.1).
The request then goes to the address that was checked, so a DNS answer that changes
between the check and the connection cannot sneak a private address in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from bot.errors import WebhookTargetRefused

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL and the address to connect to."""

    url: str
    host: str
    port: int
    address: str
    tls: bool

    @property
    def connect_url(self) -> str:
        """The URL with the checked address in place of the host name."""
        parts = urlsplit(self.url)
        ip = ipaddress.ip_address(self.address)
        host = f"[{ip}]" if ip.version == 6 else str(ip)
        return SplitResult(parts.scheme, f"{host}:{self.port}", parts.path or "/",
                           parts.query, "").geturl()


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def refused_reason(address: Address) -> str | None:
    """Why an address is not a public one, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for attribute in ("is_loopback", "is_private", "is_link_local", "is_multicast",
                      "is_reserved", "is_unspecified"):
        if getattr(address, attribute):
            return attribute.removeprefix("is_").replace("_", "-")
    return None


def parse_url(url: str) -> SplitResult:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookTargetRefused(url, "only http:// and https:// URLs")
    if not parts.hostname:
        raise WebhookTargetRefused(url, "no host")
    if parts.username or parts.password:
        raise WebhookTargetRefused(url, "credentials in the URL are not allowed")
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as exc:
        raise WebhookTargetRefused(url, "bad port") from exc
    return parts


async def check_target(
    url: str, *, allow_private: bool, resolve: Resolver = system_resolver
) -> Target:
    """Resolve ``url``'s host and refuse it (before connecting) if it is not allowed."""
    parts = parse_url(url)
    host = parts.hostname or ""
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = [ipaddress.ip_address(a.split("%", 1)[0])
                         for a in await resolve(host, port)]
        except OSError as exc:
            raise WebhookTargetRefused(url, f"cannot resolve {host}: {exc}") from exc
    if not addresses:
        raise WebhookTargetRefused(url, f"{host} has no address")
    if not allow_private:
        for address in addresses:
            reason = refused_reason(address)
            if reason is not None:
                raise WebhookTargetRefused(
                    url, f"{host} resolves to {address} ({reason}); such targets are refused "
                    "in production (ATIENDE_WEBHOOKS_ALLOW_PRIVATE=true allows them)")
    return Target(url, host, port, str(addresses[0]), tls)
