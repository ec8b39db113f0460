"""The bench starts every server before measuring: a peer that exits at start is replaced by
its fallback (llama-server without AMX repacking) or left out with a note; ours must start."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.__main__ import start_all
from bench.processes import free_port
from bench.servers import ServerSpec, llama_server


def http_server(label: str) -> ServerSpec:
    port = free_port()
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    return ServerSpec(label, argv, port, "m", health_path="/")


def exits_at_once(label: str, fallback: ServerSpec | None = None) -> ServerSpec:
    argv = [sys.executable, "-c", "raise SystemExit(3)"]
    return ServerSpec(label, argv, free_port(), "m", fallback=fallback, fallback_reason="crashed")


def test_a_peer_that_exits_at_start_is_replaced_by_its_fallback(tmp_path: Path) -> None:
    specs = [http_server("ours"), exits_at_once("peer", fallback=http_server("peer, plan B"))]
    servers, notes = start_all(specs, tmp_path)
    try:
        assert [s.spec.label for s in servers] == ["ours", "peer, plan B"]
        assert notes == ["peer crashed: peer, plan B"]
    finally:
        for server in servers:
            server.stop()


def test_a_peer_without_a_working_fallback_is_left_out_with_a_note(tmp_path: Path) -> None:
    specs = [http_server("ours"), exits_at_once("peer", fallback=exits_at_once("plan B"))]
    servers, notes = start_all(specs, tmp_path)
    try:
        assert [s.spec.label for s in servers] == ["ours"]
        assert len(notes) == 1 and notes[0].startswith("peer left out: plan B exited")
    finally:
        for server in servers:
            server.stop()


def test_ours_must_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="ours exited"):
        start_all([exits_at_once("ours"), http_server("peer")], tmp_path)


def test_llama_server_falls_back_to_no_repacking(tmp_path: Path) -> None:
    spec = llama_server(Path("/opt/llama-server"), Path("model.Q4_1.gguf"))
    assert spec.fallback is not None and spec.fallback.argv == [*spec.argv, "--no-repack"]
    assert spec.fallback.port == spec.port and "#20824" in spec.fallback_reason
