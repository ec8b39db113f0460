"""The SSRF rule: loopback, private, link-local and metadata addresses refused, by name, by
literal, and after a real redirect over a real socket."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from chatui.net_guard import (
    URL_FORBIDDEN,
    URL_NOT_HTTP,
    UnsafeAddress,
    check_url,
    check_url_async,
    is_public_address,
    origin_of,
    request_guard,
)
from tests.chatui.fake_endpoints import FakeServer


class Redirector(FakeServer):
    """Answers `/to?url=...` with a 302 to `url`, and `/ok` with 200."""

    def _routes(self) -> list[Route]:
        return [Route("/to", self._to), Route("/ok", self._ok)]

    async def _to(self, request: Request) -> Response:
        await self._record(request)
        return RedirectResponse(request.query_params["url"], status_code=302)

    async def _ok(self, request: Request) -> Response:
        await self._record(request)
        return Response("fine")


@pytest.fixture(scope="module")
def redirector() -> Iterator[Redirector]:
    with Redirector() as server:
        yield server


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.5.4", "169.254.169.254", "100.64.0.1",
     "0.0.0.0", "::1", "fe80::1", "fd00:ec2::254", "::ffff:127.0.0.1", "224.0.0.1"],
)  # fmt: skip
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(address)


def test_public_addresses_are() -> None:
    assert is_public_address("1.1.1.1")
    assert is_public_address("2606:4700:4700::1111")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/mcp",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:8080/",  # a name that resolves to loopback
        "http://[::1]/",
        "http://metadata.google.internal/",
    ],
)
def test_probes_are_refused(url: str) -> None:
    with pytest.raises(UnsafeAddress) as info:
        check_url(url)
    assert "not allowed" in str(info.value) or "could not be resolved" in str(info.value)


def test_scheme_and_allow_private() -> None:
    with pytest.raises(UnsafeAddress, match=URL_NOT_HTTP):
        check_url("file:///etc/passwd")
    with pytest.raises(UnsafeAddress, match=URL_NOT_HTTP):
        check_url("gopher://127.0.0.1/", allow_private=True)
    check_url("http://127.0.0.1:9/", allow_private=True)  # the operator allowed it


async def test_async_check_refuses_loopback_names() -> None:
    with pytest.raises(UnsafeAddress, match="localhost"):
        await check_url_async("http://localhost/")


@pytest.mark.parametrize("target", ["http://127.0.0.1:{port}/ok", "http://169.254.169.254/"])
async def test_a_redirect_to_an_internal_address_is_refused(
    redirector: Redirector, target: str
) -> None:
    """The first hop is trusted (an operator's server); where it redirects is checked."""
    trusted = frozenset({origin_of(redirector.url)})
    hook = request_guard(trusted=trusted)
    before = len(redirector.requests)
    # Loopback on another origin than the trusted one: the same port under the name localhost.
    location = target.format(port=redirector.port).replace("127.0.0.1", "localhost")
    host = location.split("/")[2].split(":")[0]
    async with httpx.AsyncClient(event_hooks={"request": [hook]}, follow_redirects=True) as client:
        with pytest.raises(UnsafeAddress) as info:
            await client.get(redirector.url + "/to", params={"url": location})
    assert str(info.value) == URL_FORBIDDEN.format(host=host)
    assert len(redirector.requests) == before + 1  # the redirect target was never asked


async def test_the_trusted_origin_itself_is_fetched(redirector: Redirector) -> None:
    hook = request_guard(trusted=frozenset({origin_of(redirector.url)}))
    async with httpx.AsyncClient(event_hooks={"request": [hook]}) as client:
        response = await client.get(redirector.url + "/ok")
    assert response.text == "fine"
    async with httpx.AsyncClient(event_hooks={"request": [request_guard()]}) as client:
        with pytest.raises(UnsafeAddress):
            await client.get(redirector.url + "/ok")
