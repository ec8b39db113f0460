"""Fixtures for the configuration, prompting and endpoint-client tests (no database needed)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:  # `tests.chatui.fake_endpoints` and the project packages
    sys.path.insert(0, str(ROOT))

from chatui.streaming.hub import get_hub  # noqa: E402
from tests.chatui.fake_endpoints import fake_openai, fake_tgi  # noqa: E402, F401

ENV_FIXTURES = ROOT / "tests" / "fixtures" / "env"


@pytest.fixture
def env_fixture() -> Iterator[Callable[[str], str]]:
    """``env_fixture(name)`` -> the text of tests/fixtures/env/<name>."""
    yield lambda name: (ENV_FIXTURES / name).read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def _fresh_endpoint_state() -> Iterator[None]:
    """Health marks and cached templates must not leak from one test to the next."""
    get_hub().endpoints.reset()
    yield
    get_hub().endpoints.reset()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client with a short read timeout, so hang tests fail over quickly."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(1.0, connect=1.0)) as http:
        yield http
