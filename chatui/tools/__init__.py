"""The tools a model may call: Python-registered built-ins (`builtins`), MCP servers
(`mcp_servers`: the configuration, `mcp_client`: the SDK calls, `catalog`: which tools exist
and for whom), the running of one call with its limits (`calls`) and the multi-step loop of
an answer (`loop`, `history`).

Must not import Django's ORM, the web layer or the websocket layer (consumers, routing,
`chatui.streaming.socket`, `chatui.layers`): callers store the calls.
"""

from __future__ import annotations

from chatui.tools.builtins import (
    CALCULATOR_ERROR,
    MAX_EXPRESSION_CHARS,
    CalculatorError,
    Tool,
    calculate,
    current_datetime,
    register_tool,
    tool_get,
    tool_list,
)

__all__ = [
    "CALCULATOR_ERROR",
    "MAX_EXPRESSION_CHARS",
    "CalculatorError",
    "Tool",
    "calculate",
    "current_datetime",
    "register_tool",
    "tool_get",
    "tool_list",
]
