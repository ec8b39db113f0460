"""Fetching a URL a user gave, without letting them reach what only the server can reach (SSRF).

`check_public_host(host)` resolves a host name and refuses it when any of its addresses is
loopback, private, link-local, unique-local, multicast, reserved or a cloud metadata address,
unless that address is in the admin's allow-list (``URL_FETCH_ALLOWED_NETWORKS``).
`fetch_public_url(url, max_bytes=..., timeout=...)` fetches a page with the same check on every
hop: the connection goes to the address that was checked (never a second lookup a DNS server
could answer differently), each redirect is checked again, and the body and the whole fetch
are bounded in bytes and seconds. Clients that fetch through a library of their own (the MCP
SDK's httpx client) check every request, redirects included, with `request_guard` as a request
event hook, and a URL a user saves with `check_url`.

Self-contained (httpx and the standard library): must not import Django, `chatui.models` or
the websocket layer; callers pass the allow-list in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

# Messages users see (tests import these).
ERR_BAD_URL = "Only http:// and https:// URLs can be fetched."
ERR_UNRESOLVED = "{host} could not be resolved."
ERR_BLOCKED = "{host} is a private or local address; it cannot be fetched."
ERR_TOO_MANY_REDIRECTS = "The page redirected too many times."
ERR_TOO_LARGE = "The page is larger than {limit} bytes."
ERR_TIMEOUT = "The page took too long to fetch."
ERR_FETCH = "The page could not be fetched: {reason}"
ERR_STATUS = "The page could not be fetched (HTTP {status})."
URL_NOT_HTTP = "Only http and https addresses are allowed."
URL_NO_HOST = "The address has no host name."
URL_UNRESOLVED = "The host name {host} could not be resolved."
URL_FORBIDDEN = "The address {host} is not allowed: it leads to a private or internal network."

MAX_REDIRECTS = 5
# Instance metadata services: link-local or unique-local already, named so that an allow-list
# of a whole private range never lets them through.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: IPv4 in the last 32 bits
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedURL(ValueError):
    """The URL may not be fetched, or its fetch failed; the message is fit to show users."""


class UnsafeAddress(BlockedURL):
    """A server address (an MCP server's URL) the rule refuses; the message is fit to show."""


@dataclass(frozen=True)
class FetchedPage:
    """A fetched page: where it ended (after redirects), its type and its (bounded) bytes."""

    url: str
    content_type: str
    content: bytes


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """The allow-list from its text form (``127.0.0.1``, ``10.0.0.0/8``, ``::1``)."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def is_public_address(address: Address | str, allowed: Iterable[Network] = ()) -> bool:
    """Whether a connection to `address` reaches only the public internet (or the allow-list).

    Metadata addresses are refused even when an allowed network contains them."""
    if isinstance(address, str):
        address = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address):  # an IPv4 address inside an IPv6 one
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(embedded, allowed)
    if address in METADATA_ADDRESSES:
        return False
    if any(address in network for network in allowed):
        return True
    return address.is_global and not address.is_multicast


def check_public_host(host: str, *, port: int = 443, allowed: Iterable[Network] = ()) -> Address:
    """The address to connect to for `host`; raises `BlockedURL` when it resolves to none or
    when any of its addresses is not public (a name with one public and one private address
    is refused: which one a client uses is not ours to choose)."""
    allowed = tuple(allowed)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise BlockedURL(ERR_UNRESOLVED.format(host=host)) from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise BlockedURL(ERR_UNRESOLVED.format(host=host))
    if not all(is_public_address(a, allowed) for a in addresses):
        raise BlockedURL(ERR_BLOCKED.format(host=host))
    return addresses[0]


def _pinned_request(url: str, allowed: tuple[Network, ...]) -> tuple[str, dict[str, str], dict]:
    """The URL with its host replaced by the checked address, the Host header and TLS name."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedURL(ERR_BAD_URL)
    if parts.username or parts.password:
        raise BlockedURL(ERR_BAD_URL)
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BlockedURL(ERR_BAD_URL) from None
    address = check_public_host(host, port=port, allowed=allowed)
    literal = f"[{address}]" if address.version == 6 else str(address)
    pinned = parts._replace(netloc=f"{literal}:{port}").geturl()
    default_port = port == (443 if parts.scheme == "https" else 80)
    host_header = host if default_port else f"{host}:{port}"
    if ":" in host:  # an IPv6 literal keeps its brackets in the Host header
        host_header = f"[{host}]" if default_port else f"[{host}]:{port}"
    return pinned, {"Host": host_header}, {"sni_hostname": host}


def fetch_public_url(
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    allowed: Iterable[Network] = (),
    user_agent: str = "chatui-fetch/1.0",
) -> FetchedPage:
    """GET `url` as a user's browser would, but only from public addresses (see the module).

    Raises `BlockedURL` for a refused address, too many redirects, a body over `max_bytes`, a
    fetch over `timeout` seconds in all, an error status or a transport error."""
    allowed = tuple(allowed)
    deadline = time.monotonic() + timeout
    headers = {"User-Agent": user_agent, "Accept": "text/html,application/pdf,*/*;q=0.8"}
    try:
        with httpx.Client(follow_redirects=False, timeout=timeout, trust_env=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                pinned, host_header, extensions = _pinned_request(url, allowed)
                remaining = max(0.1, deadline - time.monotonic())
                request = client.build_request(
                    "GET",
                    pinned,
                    headers=headers | host_header,
                    extensions=extensions | {"timeout": httpx.Timeout(remaining).as_dict()},
                )
                response = client.send(request, stream=True)
                try:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code >= 400:
                        raise BlockedURL(ERR_STATUS.format(status=response.status_code))
                    content = _read_bounded(response, max_bytes, deadline)
                    content_type = response.headers.get("content-type", "")
                    return FetchedPage(url, content_type.split(";")[0].strip().lower(), content)
                finally:
                    response.close()
    except httpx.TimeoutException:
        raise BlockedURL(ERR_TIMEOUT) from None
    except httpx.HTTPError as exc:
        raise BlockedURL(ERR_FETCH.format(reason=type(exc).__name__)) from None
    raise BlockedURL(ERR_TOO_MANY_REDIRECTS)


def _read_bounded(response: httpx.Response, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BlockedURL(ERR_TOO_LARGE.format(limit=max_bytes))
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise BlockedURL(ERR_TOO_LARGE.format(limit=max_bytes))
        if time.monotonic() > deadline:
            raise BlockedURL(ERR_TIMEOUT)
    return bytes(body)


# --- server addresses checked per request (clients of other libraries: the MCP SDK) ----------


def _split(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeAddress(URL_NOT_HTTP)
    if not parts.hostname:
        raise UnsafeAddress(URL_NO_HOST)
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def _check_addresses(host: str, infos: list[Any]) -> None:
    if host.lower().rstrip(".") in METADATA_HOSTS:
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
    """An async request event hook for httpx clients: each request (each redirect too) is
    checked before it is sent. Origins in `trusted` (see `origin_of`; e.g. a server the
    operator configured) pass unchecked, but a redirect away from them is checked."""

    async def guard_request(request: Any) -> None:
        url = str(request.url)
        if origin_of(url) not in trusted:
            await check_url_async(url, allow_private=allow_private)

    return guard_request
