"""Fake TGI and OpenAI-compatible servers on real sockets, for tests of code that calls them.

Each server is a small Starlette app run by uvicorn in a background thread on a free port of
127.0.0.1. It speaks the real wire protocol (TGI's SSE framing and error bodies, OpenAI's chunks
ending with ``data: [DONE]``), follows a per-test :class:`Script` (tokens, delay per token, a
failure mode), records every request it received, and notes when a client went away in the middle
of a stream (so a Stop button can be tested end to end).

One module per role: ``script`` (what a fake is told to do, what it records), ``server`` (the
common uvicorn-in-a-thread part), ``tgi`` and ``openai_compat`` (the two fakes), ``fixtures``
(pytest factories). Import from the package::

    with FakeTGI(Script(tokens=["Hel", "lo"])) as tgi:
        httpx.post(tgi.url + "/generate", json={"inputs": "hi"})
        assert tgi.requests[0].body["inputs"] == "hi"

or through the pytest fixture factories ``fake_tgi`` / ``fake_openai`` (import them into a
conftest.py: ``from tests.chatui.fake_endpoints import fake_openai, fake_tgi``)::

    def test_x(fake_tgi):
        tgi = fake_tgi(Script(tokens=["a", "b"], delay=0.01))

``unused_url()`` gives the address of a closed port, for "connection refused".

This package must not import Django or anything from ``chatui``: it stands in for the far side.
"""

from __future__ import annotations

from tests.chatui.fake_endpoints.fixtures import fake_openai, fake_tgi
from tests.chatui.fake_endpoints.openai_compat import FakeOpenAI
from tests.chatui.fake_endpoints.script import (
    EOS,
    OPENAI_ERROR,
    TGI_GENERATION_ERROR,
    TGI_VALIDATION_ERROR,
    FailMode,
    RecordedRequest,
    Script,
    Token,
)
from tests.chatui.fake_endpoints.server import FakeServer, unused_url
from tests.chatui.fake_endpoints.tgi import FakeTGI

__all__ = [
    "EOS",
    "OPENAI_ERROR",
    "TGI_GENERATION_ERROR",
    "TGI_VALIDATION_ERROR",
    "FailMode",
    "FakeOpenAI",
    "FakeServer",
    "FakeTGI",
    "RecordedRequest",
    "Script",
    "Token",
    "fake_openai",
    "fake_tgi",
    "unused_url",
]
