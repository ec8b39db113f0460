"""MCP servers nobody here wrote, through the SDK client, the catalog and the call limits:
mcp-server-time over stdio, server-everything over streamable HTTP, and our own misbehaving
server (an error, a hang, megabytes), plus the SSRF rule for a user's server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatui.net_guard import UnsafeAddress
from chatui.tools.calls import (
    RESULT_TRUNCATED,
    TOOL_TIMED_OUT,
    UNKNOWN_TOOL,
    CallLimits,
    RequestedCall,
    run_calls,
)
from chatui.tools.catalog import ToolCatalog
from chatui.tools.mcp_client import mcp_list_tools
from chatui.tools.mcp_servers import server_from_entry
from tests.peers.faulty_mcp import FAILURE, HUGE_CHARS
from tests.peers.mcp_peers import everything_server, faulty_server, time_server_entry


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mcp-logs")


@pytest.fixture(scope="module")
def everything_url(logs: Path) -> Iterator[str]:
    with everything_server(logs) as url:
        yield url


@pytest.fixture(scope="module")
def faulty_url(logs: Path) -> Iterator[str]:
    with faulty_server(logs) as url:
        yield url


async def test_the_time_server_over_stdio_tells_the_time_in_tokyo() -> None:
    catalog = ToolCatalog([server_from_entry(time_server_entry())], with_builtins=False)
    tools = {t.name: t for t in await catalog.offered()}
    assert {"get_current_time", "convert_time"} <= set(tools)
    assert tools["get_current_time"].source == "time"
    call = RequestedCall("c1", "get_current_time", json.dumps({"timezone": "Asia/Tokyo"}))
    [record] = await run_calls([call], tools, catalog=catalog, limits=CallLimits(), step=0)
    assert not record["error"]
    assert json.loads(record["result"])["timezone"] == "Asia/Tokyo"
    assert "+09:00" in record["result"]
    assert record["duration_ms"] > 0 and record["source"] == "time"


async def test_everything_over_streamable_http(everything_url: str) -> None:
    server = server_from_entry({"name": "everything", "url": everything_url})
    catalog = ToolCatalog([server], with_builtins=False, allow_private=True)
    tools = {t.name: t for t in await catalog.offered(disabled=["everything/get-sum"])}
    assert "echo" in tools and "get-sum" not in tools  # a tool the user turned off
    calls = [
        RequestedCall("a", "echo", json.dumps({"message": "hello there"})),
        RequestedCall("b", "nope", "{}"),
        RequestedCall("c", "echo", "not json"),
    ]
    records = await run_calls(calls, tools, catalog=catalog, limits=CallLimits(), step=2)
    assert "hello there" in records[0]["result"] and not records[0]["error"]
    assert records[1]["error"] == UNKNOWN_TOOL.format("nope")
    assert records[2]["error"] and [r["step"] for r in records] == [2, 2, 2]
    assert await catalog.offered(disabled=["server:everything"]) == []


async def test_everything_over_sse(logs: Path) -> None:
    with everything_server(logs, "sse") as url:
        server = server_from_entry({"name": "old", "url": url})
        assert server.transport == "sse"
        catalog = ToolCatalog([server], with_builtins=False, allow_private=True)
        tools = {t.name: t for t in await catalog.offered()}
        call = RequestedCall("s", "get-sum", json.dumps({"a": 2, "b": 40}))
        [record] = await run_calls([call], tools, catalog=catalog, limits=CallLimits(), step=0)
    assert "42" in record["result"] and not record["error"]


async def test_errors_hangs_and_megabytes_are_contained(faulty_url: str) -> None:
    server = server_from_entry({"name": "faulty", "url": faulty_url})
    catalog = ToolCatalog([server], with_builtins=False, allow_private=True)
    tools = {t.name: t for t in await catalog.offered()}
    limits = CallLimits(timeout_s=6.0, max_result_chars=1000)
    calls = [
        RequestedCall("1", "explode", "{}"),
        RequestedCall("2", "slow", json.dumps({"seconds": 30})),
        RequestedCall("3", "huge", "{}"),
        RequestedCall("4", "add", json.dumps({"a": 2, "b": 3})),
    ]
    records = await run_calls(calls, tools, catalog=catalog, limits=limits, step=0)
    explode, slow, huge, add = records
    assert FAILURE in explode["error"]
    assert slow["error"] == TOOL_TIMED_OUT.format(6.0)
    assert slow["duration_ms"] < 9000  # run at once with the others, stopped at the limit
    # Three megabytes: read, then cut with a notice the model reads.
    assert huge["result"].endswith(RESULT_TRUNCATED.format(1000, HUGE_CHARS))
    assert len(huge["result"]) < 1200 and not huge["error"]
    assert add["result"] == "5" and not add["error"]


async def test_a_users_server_on_a_private_address_is_refused(faulty_url: str) -> None:
    mine = server_from_entry({"name": "mine", "url": faulty_url}, is_user=True)
    with pytest.raises(BaseException) as info:  # the SDK wraps it in an exception group
        await mcp_list_tools(mine)
    assert _contains(info.value, UnsafeAddress)
    assert await ToolCatalog(with_builtins=False).offered(user_servers=[mine]) == []
    tools = await ToolCatalog(with_builtins=False, allow_private=True).offered(user_servers=[mine])
    assert "add" in {t.name for t in tools}  # the operator allowed private addresses


def _contains(error: BaseException, kind: type[BaseException]) -> bool:
    if isinstance(error, kind):
        return True
    children = getattr(error, "exceptions", ()) or ()
    nested = [error.__cause__, error.__context__, *children]
    return any(e is not None and e is not error and _contains(e, kind) for e in nested)
