"""Start and stop the servers under test as subprocesses, and watch their memory."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import psutil

from bench.processes import VENV_BIN, free_port
from tests.support.server_process import ServerProcess


@dataclass
class ServerSpec:
    """How to start one server and which `model` name its API expects."""

    label: str
    argv: list[str]
    port: int
    model_name: str
    health_path: str = "/health"
    env: dict[str, str] = field(default_factory=dict)
    # what to start instead when this one exits before it is ready, and why it might
    fallback: ServerSpec | None = None
    fallback_reason: str = ""
    # body fields every request to it carries: `ignore_eos` where the server has it, so each
    # answer runs to `max_tokens` (random weights never say EOS on purpose, real ones early)
    request_extras: dict[str, Any] = field(default_factory=dict)
    # how long it may take to answer /health: a real-size model's first start converts its
    # GGUF (minutes for 1.5B parameters on two busy cores)
    ready_timeout_s: float = 300.0


# vLLM's name, which this server and llama-server both read (transformers serve has no such
# field: the real-size model's zero special-token rows keep it off EOS, see bench.real_model)
IGNORE_EOS = {"ignore_eos": True}


def our_server(
    model_id: str | Path, dtype: str = "auto", device: str = "auto", **flags: object
) -> ServerSpec:
    """This server on `model_id`: `bundled` (the GGUF, loaded as the server chooses: its own
    quantized weights where supported) or a directory of converted weights."""
    port = free_port()
    argv = [str(VENV_BIN / "python"), "-m", "inference", "--model-id", str(model_id)]
    argv += ["--port", str(port), "--dtype", dtype, "--device", device]
    for name, value in flags.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    return ServerSpec(f"ours ({dtype})", argv, port, model_name="tgi", request_extras=IGNORE_EOS)


def transformers_serve(model_dir: Path, dtype: str, cache_tokens: int = 65536) -> ServerSpec:
    """The peer, with a KV cache of `cache_tokens` like ours (its own default sizes the cache
    from free memory: two of them at once exhaust this machine). Its check that the cache fits
    allows 60% of the memory on CPU, counted on the process's NUMA node only (half of this
    machine), which refuses the float32 cache: 90% lets it start; the cache size is fixed."""
    port = free_port()
    argv = [str(VENV_BIN / "transformers"), "serve", "--continuous-batching", "--dtype", dtype]
    argv += ["--cb-block-size", "32", "--cb-num-blocks", str(cache_tokens // 32)]
    argv += ["--cb-max-memory-percent", "0.9"]
    argv += ["--port", str(port), "--host", "127.0.0.1", str(model_dir)]
    return ServerSpec(f"transformers serve CB ({dtype})", argv, port, model_name=str(model_dir))


class RunningServer(ServerProcess):
    """A server subprocess, started at once, with a background sampler of its process tree's
    RSS."""

    def __init__(self, spec: ServerSpec, log_path: Path) -> None:
        self.spec = spec
        self.base_url = f"http://127.0.0.1:{spec.port}"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", **spec.env}
        ready_url = self.base_url + spec.health_path
        super().__init__(spec.argv, env, ready_url, log_path=log_path, name=spec.label)
        self.start()
        self.peak_rss = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample_rss, daemon=True)
        self._sampler.start()

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        assert self.process is not None
        return self.process

    def _sample_rss(self) -> None:
        try:
            root = psutil.Process(self.proc.pid)
        except psutil.Error:
            return
        while not self._stop.wait(0.2):
            try:
                procs = [root, *root.children(recursive=True)]
                self.peak_rss = max(self.peak_rss, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                continue

    def wait_ready(self, timeout_s: float | None = None) -> Self:
        return super().wait_ready(self.spec.ready_timeout_s if timeout_s is None else timeout_s)

    def reset_peak(self) -> None:
        self.peak_rss = 0

    def stop(self, timeout_s: float = 20.0) -> None:
        self._stop.set()
        super().stop(timeout_s)


def llama_server(
    binary: Path, gguf: Path, slots: int = 32, threads: int = 2, ctx_tokens: int = 32768
) -> ServerSpec:
    """llama.cpp's server on the GGUF file itself, `slots` sequences decoded together in one
    batch (continuous batching), their KV cache `ctx_tokens` in all (split evenly between the
    slots: 1024 each by default, enough for a bench prompt plus its answer). Its own prompt
    cache stays on, like our prefix caching; the distinct-prompt load defeats both."""
    port = free_port()
    argv = [str(binary), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["-np", str(slots), "-t", str(threads), "-c", str(ctx_tokens), "--cont-batching"]
    argv += ["--no-webui"]
    label = f"llama-server ({gguf.stem.rsplit('.', 1)[-1]})"
    # Its AMX path (the weights repacked for AMX tiles, on by default where the CPU has AMX)
    # can crash at the first matmul (ggml-org/llama.cpp#20824): then the same server without
    # repacking, on AVX-512/VNNI, is the peer.
    no_repack = ServerSpec(
        f"{label} --no-repack",
        [*argv, "--no-repack"],
        port,
        "llama.cpp",
        request_extras=IGNORE_EOS,
    )
    reason = "exited at start (its AMX repacking crashes on some CPUs: ggml-org/llama.cpp#20824)"
    return ServerSpec(
        label,
        argv,
        port,
        "llama.cpp",
        fallback=no_repack,
        fallback_reason=reason,
        request_extras=IGNORE_EOS,
    )


def start_all(
    specs: list[ServerSpec],
    logs: Path,
    prefix: str = "server",
    ready_timeout_s: float | None = None,
) -> tuple[list[RunningServer], list[str]]:
    """Start every server; ours must come up, a peer that does not is replaced by its
    fallback where it has one, else stopped and noted. ``ready_timeout_s`` replaces each
    spec's (and its fallback's) wait for readiness."""
    if ready_timeout_s is not None:
        for spec in specs:
            for each in (spec, spec.fallback):
                if each is not None:
                    each.ready_timeout_s = ready_timeout_s
    servers = [RunningServer(spec, logs / f"{prefix}{i}.log") for i, spec in enumerate(specs)]
    ready: list[RunningServer] = []
    notes: list[str] = []
    for i, server in enumerate(servers):
        log = logs / f"{prefix}{i}.log"
        try:
            server.wait_ready()
            ready.append(server)
            continue
        except (RuntimeError, TimeoutError) as exc:
            server.stop()
            if i == 0:
                for other in servers[1:]:
                    other.stop()
                print("\n".join(log.read_text(errors="replace").splitlines()[-5:]), file=sys.stderr)
                raise
            failure = exc
        if (fallback := server.spec.fallback) is not None:
            second = RunningServer(fallback, log.with_suffix(".fallback.log"))
            try:
                ready.append(second.wait_ready())
                notes.append(f"{server.spec.label} {server.spec.fallback_reason}: {fallback.label}")
                continue
            except (RuntimeError, TimeoutError) as exc:
                second.stop()
                failure = exc
        notes.append(f"{server.spec.label} left out: {failure} (log {log})")
    return ready, notes
