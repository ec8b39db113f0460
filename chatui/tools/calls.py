"""Running the tool calls a model asked for, within limits: a time limit per call, a result
cut to a size with a notice, an error as text the model reads (never a failed answer), and a
record of each call as the chat stores and shows it.

A record is `{"id", "name", "arguments", "result", "error", "duration_ms", "source", "step"}`:
`arguments` is the JSON text the model wrote, `result` what the model reads back (the error's
text when it failed), `error` the failure ("" when none), `source` "builtin" or the MCP
server's name, `step` the round of the answer it belongs to (0 first).

Calls of one step are independent (the model asked for them together), so they run at once.
Cancelling the caller (Stop) cancels every running call.

Must not import Django or the websocket layer.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from chatui.tools.builtins import tool_get
from chatui.tools.catalog import BUILTIN, OfferedTool, ToolCatalog
from chatui.tools.mcp_client import mcp_call_tool, root_cause
from chatui.tools.mcp_servers import McpServer

# What the model and the user read (tests import these).
UNKNOWN_TOOL = "There is no tool named {0!r}."
BAD_ARGUMENTS = "The arguments are not a JSON object."
TOOL_TIMED_OUT = "The tool did not answer within {0:g} s and was stopped."
TOOL_FAILED = "The tool failed: {0}"
RESULT_TRUNCATED = "\n\n[The result was cut to {0} of its {1} characters.]"
SERVER_GONE = "The tool's server {0!r} is not available."


@dataclass(frozen=True)
class CallLimits:
    """How long one call may run and how much of its result the model reads."""

    timeout_s: float = 30.0
    max_result_chars: int = 20_000


@dataclass(frozen=True)
class RequestedCall:
    """One call the model made: its id, the tool's name and the arguments' JSON text."""

    id: str
    name: str
    arguments: str


def truncated(text: str, max_chars: int) -> str:
    """`text`, cut to `max_chars` with a notice that says so."""
    if len(text) <= max_chars:
        return text
    return text[:max_chars] + RESULT_TRUNCATED.format(max_chars, len(text))


async def _invoke(
    tool: OfferedTool,
    arguments: dict[str, Any],
    catalog: ToolCatalog,
    user_servers: Iterable[McpServer],
) -> tuple[str, bool]:
    if tool.source == BUILTIN:
        builtin = tool_get(tool.remote_name)
        if builtin is None:
            return UNKNOWN_TOOL.format(tool.name), True
        text = await asyncio.to_thread(builtin.function, **arguments)
        return str(text), False
    server = catalog.server(tool.source, user_servers)
    if server is None:
        return SERVER_GONE.format(tool.source), True
    result = await mcp_call_tool(
        server, tool.remote_name, arguments, allow_private=catalog.allow_private
    )
    return result.text, result.is_error


async def run_call(
    call: RequestedCall,
    tools: dict[str, OfferedTool],
    *,
    catalog: ToolCatalog,
    limits: CallLimits,
    step: int,
    user_servers: Iterable[McpServer] = (),
) -> dict[str, Any]:
    """Run one call within `limits`; its record (see the module's docstring)."""
    started = time.monotonic()
    tool = tools.get(call.name)
    error = ""
    result = ""
    try:
        arguments = json.loads(call.arguments or "{}")
    except ValueError:
        arguments = None
    if tool is None:
        error = UNKNOWN_TOOL.format(call.name)
    elif not isinstance(arguments, dict):
        error = BAD_ARGUMENTS
    else:
        try:
            async with asyncio.timeout(limits.timeout_s):
                text, is_error = await _invoke(tool, arguments, catalog, user_servers)
            result = truncated(text, limits.max_result_chars)
            error = result if is_error else ""
        except TimeoutError:
            error = TOOL_TIMED_OUT.format(limits.timeout_s)
        except Exception as exc:  # a tool's failure is its answer, never the chat's
            cause = root_cause(exc)
            detail = str(cause) or type(cause).__name__
            error = truncated(TOOL_FAILED.format(detail), limits.max_result_chars)
    return {
        "id": call.id,
        "name": call.name,
        "arguments": call.arguments,
        "result": error or result,
        "error": error,
        "duration_ms": round((time.monotonic() - started) * 1000),
        "source": tool.source if tool is not None else "",
        "step": step,
    }


async def run_calls(
    calls: list[RequestedCall],
    tools: dict[str, OfferedTool],
    *,
    catalog: ToolCatalog,
    limits: CallLimits,
    step: int,
    user_servers: Iterable[McpServer] = (),
) -> list[dict[str, Any]]:
    """The calls of one step, run at once; their records in the order the model gave."""
    return list(
        await asyncio.gather(
            *(
                run_call(
                    c, tools, catalog=catalog, limits=limits, step=step, user_servers=user_servers
                )
                for c in calls
            )
        )
    )
