"""The inference server's `/docs` renders in a real browser with no request leaving the host."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Browser

from tests.inference.api.conftest import serve, tiny_engine
from tests.inference.live_server import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def inference_server() -> Iterator[LiveServer]:
    live = serve(tiny_engine())
    yield live
    live.stop()


def test_swagger_ui_renders_every_route_offline(browser: Browser, inference_server: LiveServer):
    page = browser.new_page()
    hosts: set[str] = set()
    errors: list[str] = []
    page.on("request", lambda request: hosts.add(urlparse(request.url).netloc))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(inference_server.url + "/docs")
    page.wait_for_selector(".opblock", timeout=20_000)
    paths = set(page.locator(".opblock-summary-path").all_inner_texts())
    page.close()
    assert {"/generate", "/generate_stream", "/v1/chat/completions", "/info"} <= paths
    assert hosts == {urlparse(inference_server.url).netloc}
    assert errors == []
