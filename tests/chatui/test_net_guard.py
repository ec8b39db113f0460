"""chatui.net_guard against real sockets: a page on this machine's loopback is refused unless
the admin's allow-list names it, and so are a redirect to loopback or to the cloud metadata
address, and a name that resolves to loopback; sizes and times are bounded."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chatui import net_guard
from chatui.net_guard import BlockedURL, check_public_host, fetch_public_url, parse_networks

LOOPBACK = parse_networks(["127.0.0.0/8"])


class Pages(BaseHTTPRequestHandler):
    """/page: a small HTML page; /redirect?to=URL: a 302 there; /big: 1 MB; /slow: a byte a
    second."""

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/redirect":
            self.send_response(302)
            self.send_header("Location", query.removeprefix("to="))
            self.end_headers()
        elif path == "/page":
            body = b"<html><body><h1>Hello</h1><p>from the page</p></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif path == "/big":
            self.send_response(200)
            self.end_headers()  # no Content-Length: the reader must count
            with contextlib.suppress(OSError):
                self.wfile.write(b"x" * 1_000_000)
        elif path == "/slow":
            self.send_response(200)
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gives up first
                for _ in range(10):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.5)
        else:
            self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving(host: str) -> Iterator[str]:
    """`Pages` on `host`, a free port."""
    httpd = ThreadingHTTPServer((host, 0), Pages)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serving("127.0.0.1") as url:
        yield url


def test_a_loopback_server_is_refused_unless_allowed(server: str) -> None:
    with pytest.raises(BlockedURL, match="private or local address"):
        fetch_public_url(f"{server}/page", max_bytes=10_000, timeout=5)
    page = fetch_public_url(f"{server}/page", max_bytes=10_000, timeout=5, allowed=LOOPBACK)
    assert page.content_type == "text/html"
    assert b"from the page" in page.content
    assert page.url == f"{server}/page"


def test_a_redirect_to_the_metadata_address_is_refused_even_with_loopback_allowed(
    server: str,
) -> None:
    url = f"{server}/redirect?to=http://169.254.169.254/latest/meta-data/"
    with pytest.raises(BlockedURL, match=r"169\.254\.169\.254 is a private or local address"):
        fetch_public_url(url, max_bytes=10_000, timeout=5, allowed=LOOPBACK)
    # an allow-list that names a whole range never lets the metadata address through
    everything = parse_networks(["0.0.0.0/0", "::/0"])
    with pytest.raises(BlockedURL, match=r"169\.254\.169\.254"):
        fetch_public_url(url, max_bytes=10_000, timeout=5, allowed=everything)


def test_a_redirect_to_loopback_is_refused(server: str) -> None:
    # The admin allows one address (127.0.0.2, another loopback address); its redirect to
    # 127.0.0.1 is checked again and refused.
    with serving("127.0.0.2") as allowed_server:
        url = f"{allowed_server}/redirect?to={server}/page"
        allowed = parse_networks(["127.0.0.2"])
        with pytest.raises(BlockedURL, match=r"127\.0\.0\.1 is a private or local address"):
            fetch_public_url(url, max_bytes=10_000, timeout=5, allowed=allowed)
        page = fetch_public_url(
            f"{allowed_server}/page", max_bytes=10_000, timeout=5, allowed=allowed
        )
        assert b"Hello" in page.content


def test_a_name_that_resolves_to_loopback_is_refused(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    with pytest.raises(BlockedURL, match="localhost is a private or local address"):
        fetch_public_url(f"http://localhost:{port}/page", max_bytes=10_000, timeout=5)
    with pytest.raises(BlockedURL, match="localhost"):
        check_public_host("localhost")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fd00:ec2::254",
        "fe80::1",
        "::ffff:127.0.0.1",
        "100.64.0.1",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    ],
)
def test_non_public_addresses(address: str) -> None:
    with pytest.raises(BlockedURL):
        check_public_host(address)


def test_the_metadata_address_is_refused_before_any_connection() -> None:
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/"):
        with pytest.raises(BlockedURL, match="is a private or local address"):
            fetch_public_url(url, max_bytes=10_000, timeout=5)


def test_public_addresses_pass_and_bad_urls_are_refused() -> None:
    assert str(check_public_host("8.8.8.8")) == "8.8.8.8"
    for url in ("file:///etc/passwd", "ftp://example.com/", "http://user:pw@8.8.8.8/", "nope"):
        with pytest.raises(BlockedURL, match="http"):
            fetch_public_url(url, max_bytes=10, timeout=1)


def test_size_and_time_are_bounded(server: str) -> None:
    with pytest.raises(BlockedURL, match=r"larger than 1000 bytes"):
        fetch_public_url(f"{server}/big", max_bytes=1000, timeout=5, allowed=LOOPBACK)
    started = time.monotonic()
    with pytest.raises(BlockedURL, match=net_guard.ERR_TIMEOUT):
        fetch_public_url(f"{server}/slow", max_bytes=1000, timeout=1, allowed=LOOPBACK)
    assert time.monotonic() - started < 3


def test_too_many_redirects(server: str) -> None:
    url = f"{server}/redirect?to={server}/redirect?to={server}/page"
    assert fetch_public_url(url, max_bytes=10_000, timeout=5, allowed=LOOPBACK).content
    loop = f"{server}/redirect?to=/redirect?to=/redirect"
    with pytest.raises(BlockedURL):
        fetch_public_url(loop, max_bytes=10_000, timeout=5, allowed=LOOPBACK)
