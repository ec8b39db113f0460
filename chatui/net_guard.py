"""The SSRF rule for any address a user gives the server to fetch: a URL whose host resolves
to a loopback, private, link-local, shared, reserved or cloud-metadata address is refused,
unless the operator allows private addresses.

Checking the name once is not enough: a server may redirect, and a name may resolve
differently later. So every request is checked, redirects included, by giving an httpx (or
httpx2) client `guard_request` as a request event hook: it resolves the request's host and
refuses it before anything is sent.

Self-contained on purpose (the standard library only, no Django, no other `chatui` module), so
whatever fetches a user's URL (MCP servers, links pasted into a message) shares one rule.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

# Messages users see (tests import these).
URL_NOT_HTTP = "Only http and https addresses are allowed."
URL_NO_HOST = "The address has no host name."
URL_UNRESOLVED = "The host name {host} could not be resolved."
URL_FORBIDDEN = "The address {host} is not allowed: it leads to a private or internal network."

# Metadata services that are not in a non-global range on every platform.
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
_METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)


class UnsafeAddress(ValueError):
    """A URL the rule refuses; the message is fit to show to users."""


def is_public_address(address: str) -> bool:
    """Whether an IP address is on the public internet (IPv4-mapped IPv6 read as IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in _METADATA_ADDRESSES:
        return False
    return ip.is_global and not ip.is_multicast


def _split(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeAddress(URL_NOT_HTTP)
    if not parts.hostname:
        raise UnsafeAddress(URL_NO_HOST)
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def _check_addresses(host: str, infos: list[Any]) -> None:
    if host.lower().rstrip(".") in _METADATA_HOSTS:
        raise UnsafeAddress(URL_FORBIDDEN.format(host=host))
    addresses = {info[4][0] for info in infos}
    if not addresses or not all(is_public_address(a) for a in addresses):
        raise UnsafeAddress(URL_FORBIDDEN.format(host=host))


def check_url(url: str, *, allow_private: bool = False) -> None:
    """Raise `UnsafeAddress` unless `url` is http(s) and every address of its host is public
    (with `allow_private`, only the scheme and host are checked)."""
    host, port = _split(url)
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeAddress(URL_UNRESOLVED.format(host=host)) from None
    _check_addresses(host, infos)


async def check_url_async(url: str, *, allow_private: bool = False) -> None:
    """`check_url` without blocking the event loop on DNS."""
    host, port = _split(url)
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeAddress(URL_UNRESOLVED.format(host=host)) from None
    _check_addresses(host, infos)


def origin_of(url: str) -> str:
    """`scheme://host:port`, the unit `trusted` origins are named in."""
    parts = urlsplit(url)
    host, port = _split(url)
    return f"{parts.scheme}://{host.lower()}:{port}"


def request_guard(*, allow_private: bool = False, trusted: frozenset[str] = frozenset()) -> Any:
    """An async request event hook for httpx/httpx2 clients: each request (each redirect
    too) is checked before it is sent. Origins in `trusted` (see `origin_of`; e.g. a server
    the operator configured) pass unchecked, but a redirect away from them is checked."""

    async def guard_request(request: Any) -> None:
        url = str(request.url)
        if origin_of(url) not in trusted:
            await check_url_async(url, allow_private=allow_private)

    return guard_request
