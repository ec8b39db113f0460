"""`MCP_SERVERS` in chat-ui's format (plus stdio servers), and `supportsTools`."""

from __future__ import annotations

import json

import pytest

from chatui.models_config import load_app_config
from chatui.tools.mcp_servers import (
    SERVER_BAD_URL,
    SERVER_NAME_TAKEN,
    SERVER_NEEDS_URL_OR_COMMAND,
    McpConfigError,
    parse_mcp_servers,
)


def test_chat_ui_entries_and_stdio_servers() -> None:
    raw = json.dumps(
        [
            {"name": "hf", "url": "https://hf.co/mcp", "headers": {"Authorization": "Bearer x"}},
            {"name": "legacy", "url": "https://old.example.com/sse"},
            {"name": "time", "command": "mcp-server-time", "args": ["--local-timezone", "UTC"]},
        ]
    )
    hf, legacy, time = parse_mcp_servers(raw)
    assert (hf.transport, dict(hf.headers)) == ("streamable-http", {"Authorization": "Bearer x"})
    assert legacy.transport == "sse"
    assert (time.transport, time.command) == ("stdio", "mcp-server-time")
    assert time.args == ("--local-timezone", "UTC")
    assert hf.to_public_dict()["url"] == ""  # an operator's address and headers stay private
    assert parse_mcp_servers("") == () and parse_mcp_servers(None) == ()


@pytest.mark.parametrize(
    ("entries", "error"),
    [
        ([{"name": "a", "url": "ftp://x"}], SERVER_BAD_URL),
        ([{"name": "a"}], SERVER_NEEDS_URL_OR_COMMAND),
        ([{"name": "a", "url": "https://x", "command": "y"}], SERVER_NEEDS_URL_OR_COMMAND),
        ([{"name": "a", "url": "https://x"}, {"name": "a", "url": "https://y"}],
         SERVER_NAME_TAKEN.format(name="a")),
    ],
)  # fmt: skip
def test_a_bad_entry_is_named(entries: list, error: str) -> None:
    with pytest.raises(McpConfigError) as info:
        parse_mcp_servers(json.dumps(entries))
    assert str(info.value).startswith(f"MCP_SERVERS[{len(entries) - 1}]")
    assert error in str(info.value)
    with pytest.raises(McpConfigError, match="JSON list"):
        parse_mcp_servers("{not json")


def test_supports_tools_is_chat_uis_name_for_tools() -> None:
    models = [
        {"name": "a", "supportsTools": True},
        {"name": "b", "tools": True},
        {"name": "c"},
    ]
    config = load_app_config({"MODELS": json.dumps(models)})
    assert [m.tools for m in config.models] == [True, True, False]
    assert config.models[0].to_public_dict()["tools"] is True
