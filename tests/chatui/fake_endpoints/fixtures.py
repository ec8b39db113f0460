"""pytest fixture factories that start fake endpoints and stop them after the test.

``fake_tgi`` and ``fake_openai`` yield ``make(script=None, **kwargs)``; import them into a
conftest.py to use them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.chatui.fake_endpoints.openai_compat import FakeOpenAI
from tests.chatui.fake_endpoints.script import Script
from tests.chatui.fake_endpoints.server import FakeServer
from tests.chatui.fake_endpoints.tgi import FakeTGI


def _factory(cls: type[FakeServer]) -> Callable[[], Iterator[Callable[..., Any]]]:
    def fixture() -> Iterator[Callable[..., Any]]:
        servers: list[FakeServer] = []

        def make(script: Script | None = None, **kwargs: Any) -> Any:
            server = cls(script, **kwargs).start()
            servers.append(server)
            return server

        yield make
        for server in servers:
            server.request_stop()
        for server in servers:
            server.stop()

    fixture.__name__ = f"fake_{cls.__name__[4:].lower()}"
    fixture.__doc__ = f"Factory: ``make(script=None, **kwargs)`` starts a {cls.__name__}."
    return fixture


fake_tgi = pytest.fixture(_factory(FakeTGI), name="fake_tgi")
fake_openai = pytest.fixture(_factory(FakeOpenAI), name="fake_openai")
