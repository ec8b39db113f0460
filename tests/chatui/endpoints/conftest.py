"""Fixtures for the endpoint-client tests (no database needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client with a short read timeout, so hang tests fail over quickly."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(1.0, connect=1.0)) as http:
        yield http
