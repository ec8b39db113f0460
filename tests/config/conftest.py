"""Fixtures for the tests of `config/`: chat-ui's reference `.env` files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ENV_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "env"


@pytest.fixture
def env_fixture() -> Iterator[Callable[[str], str]]:
    """``env_fixture(name)`` -> the text of tests/fixtures/env/<name>."""
    yield lambda name: (ENV_FIXTURES / name).read_text(encoding="utf-8")
