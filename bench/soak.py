"""`python -m bench.soak` / `make soak`: mixed chat traffic through the real stack for
`--minutes` (default 30), then proof that nothing was lost and nothing leaked.

The stack, as production runs it: the model server (`python -m inference`) on the bundled
model in `var/models/smollm2-135m-instruct`, `--web-processes` daphne processes (default 2) on
Redis and a scratch Postgres database (made, migrated, dropped at the end). `--visitors`
simulated visitors (`bench.soak_visitor`) each open conversations on random processes and ask,
leave mid-answer and come back, stop, regenerate, continue, edit, and send hostile frames,
recording every message as they saw it; a conversation is left for a new one after
`--max-answers` answers. Before that, the model server runs its largest steps (prompts at the
truncation limit, several at once) and each web process answers one question, so that memory
the allocators keep after their largest step is not taken for a leak.

Every `--sample-s` a row of the table: resident memory of the web processes and of the model
server, connections open on the web processes, KV cache blocks in use, asyncio tasks, answers.
At the end, once no answer runs: every stored message matches what its visitor saw (and each
visitor saw every message of its conversations); no socket, answer, group membership, asyncio
task (beyond the idle count after a warm-up) or pooled database connection is held by a web
process (`/admin/runtime.json`, psutil); the model server holds no request and no KV block
(`/metrics`); Postgres has no connection beyond the pools; no process's resident memory grew
faster than 0.5 MB a minute over the second half of the run (the least-squares slope, printed
for each process). Each row is followed by the model server's memory report
(`bench.soak_memory`: glibc's heap, Python's top growth, every cache's size and limit).
Exits 1 if anything was lost, leaked or went wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.chat_stack import Databases
from bench.machine import isa_line
from bench.soak_checks import (
    compare,
    database_connections,
    gauges,
    inbound_connections,
    rss_bytes,
    stored_messages,
)
from bench.soak_memory import breakdown, fetch_report, second_half_slope, steep
from bench.soak_stack import MODEL_DIR, Stack, prime_model_server, start, stop
from bench.soak_visitor import Visitor

DRAIN_TIMEOUT_S = 180.0
MB = 2**20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--visitors", type=int, default=6)
    parser.add_argument("--web-processes", type=int, default=2)
    parser.add_argument("--think-s", type=float, default=2.0, help="mean pause between steps")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="per answer")
    parser.add_argument(
        "--max-answers", type=int, default=12, help="per conversation, then a new one"
    )
    parser.add_argument("--sample-s", type=float, default=60.0, help="between table rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    parser.add_argument("--dtype", default="auto", help="of the model server")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/test",
        help="any database on the Postgres server to use (a scratch database is made there)",
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    )
    parser.add_argument("--keep-logs", action="store_true", help="print the log directory")
    return parser.parse_args(argv)


@dataclass
class Sample:
    minute: float
    rss_web_mb: list[float]
    rss_inference_mb: float
    connections: int
    kv_blocks_used: float
    kv_blocks_total: float
    tasks: int
    answers: int
    report: dict | None = None  # the model server's memory report
    label: str = ""  # instead of the minute


def sample(stack: Stack, minute: float, answers: int) -> Sample:
    metrics = gauges(stack.model.base_url)
    runtimes = [stack.staff.runtime(url) for url in stack.urls]
    return Sample(
        minute=minute,
        rss_web_mb=[rss_bytes(p.process.pid) / MB for p in stack.web],
        rss_inference_mb=rss_bytes(stack.model.proc.pid) / MB,
        connections=sum(inbound_connections(p.process.pid, p.port) for p in stack.web),
        kv_blocks_used=metrics.get("kv_cache_blocks_used", float("nan")),
        kv_blocks_total=metrics.get("kv_cache_blocks_total", float("nan")),
        tasks=sum(r["asyncio_tasks"] for r in runtimes),
        answers=answers,
        report=fetch_report(stack.model.base_url),
    )


def print_row(row: Sample) -> None:
    web = " + ".join(f"{mb:.0f}" for mb in row.rss_web_mb)
    minute = row.label or f"{row.minute:.0f}"
    print(
        f"| {minute} | {web} | {row.rss_inference_mb:.0f} | {row.connections} "
        f"| {row.kv_blocks_used:.0f} / {row.kv_blocks_total:.0f} | {row.tasks} "
        f"| {row.answers} |",
        flush=True,
    )
    print(f"  model server memory: {breakdown(row.report)}", flush=True)


async def drive(stack: Stack, args: argparse.Namespace) -> tuple[list[Visitor], list[Sample]]:
    """The visitors for `--minutes`, a table row every `--sample-s`, until all are done."""
    started = time.monotonic()
    until = started + args.minutes * 60
    visitors = [
        Visitor(f"v{i}", stack.urls, seed=args.seed * 1000 + i) for i in range(args.visitors)
    ]
    running = [asyncio.create_task(v.run(until, args.think_s, args.max_answers)) for v in visitors]
    samples: list[Sample] = []

    def answers() -> int:
        return sum(v.tally.answers for v in visitors)

    print("| minute | RSS web MB | RSS inference MB | open connections | KV blocks used "
          "| asyncio tasks | answers |")  # fmt: skip
    print("|---|---|---|---|---|---|---|", flush=True)
    next_at = started
    while not all(task.done() for task in running):
        if time.monotonic() >= next_at:
            minute = (time.monotonic() - started) / 60
            samples.append(await asyncio.to_thread(sample, stack, minute, answers()))
            print_row(samples[-1])
            next_at += args.sample_s
        await asyncio.wait(running, timeout=1.0)
    for task in running:
        task.result()  # a bug in the visitor itself stops the soak
    await asyncio.gather(*(v.close() for v in visitors))
    return visitors, samples


def wait_until_idle(stack: Stack) -> list[dict]:
    """The web processes' counts once no answer runs anywhere and the pages are gone."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while True:
        runtimes = [stack.staff.runtime(url) for url in stack.urls]
        metrics = gauges(stack.model.base_url)
        busy = any(r["generations"] or r["unsaved_answers"] or r["sockets"] for r in runtimes)
        busy = busy or metrics.get("tgi_batch_current_size", 0) > 0
        connected = sum(inbound_connections(p.process.pid, p.port) for p in stack.web)
        if (not busy and connected == 0) or time.monotonic() > deadline:
            return runtimes
        time.sleep(0.5)


def idle_summary(stack: Stack, runtimes: list[dict], baseline_tasks: list[int]) -> str:
    """What the processes hold once the visitors are gone (the figures `leaks` judges)."""
    metrics = gauges(stack.model.base_url)
    server_url = stack.database_url.rsplit("/", 1)[0] + "/postgres"

    def total(key: str) -> int:
        return sum(r[key] for r in runtimes)

    pools = [r["database_pool"] for r in runtimes]
    return (
        f"idle at the end: web processes hold {total('sockets')} sockets, "
        f"{total('generations')} answers, {total('layer_memberships')} group memberships, "
        f"{total('layer_buffers')} channel buffers, "
        f"{sum(map(_own_tasks, runtimes))} asyncio tasks ({sum(baseline_tasks)} after the "
        f"warm-up; the layer's readers apart), "
        f"{sum(p.get('in_use', 0) for p in pools)} pooled DB connections in use; Postgres "
        f"{database_connections(server_url, stack.database)} connections (pools "
        f"{sum(p.get('size', 0) for p in pools)}); model server batch "
        f"{metrics.get('tgi_batch_current_size', 0):.0f}, queue "
        f"{metrics.get('tgi_queue_size', 0):.0f}, KV blocks used "
        f"{metrics.get('kv_cache_blocks_used', 0):.0f} / "
        f"{metrics.get('kv_cache_blocks_total', 0):.0f}"
    )


def leaks(stack: Stack, runtimes: list[dict], baseline_tasks: list[int]) -> list[str]:
    """Whatever a process or the database still holds with no visitor left."""
    found = []
    for process, runtime, idle_tasks in zip(stack.web, runtimes, baseline_tasks, strict=True):
        where = f"web :{process.port}"
        for key in ("sockets", "generations", "unsaved_answers", "layer_memberships"):
            if runtime[key]:
                found.append(f"{where}: {runtime[key]} {key}")
        if _own_tasks(runtime) > idle_tasks:
            found.append(
                f"{where}: {_own_tasks(runtime)} asyncio tasks, {idle_tasks} when idle "
                f"before, the layer's reader apart ({runtime['task_kinds']})"
            )
        if runtime["database_pool"].get("in_use"):
            found.append(f"{where}: {runtime['database_pool']['in_use']} pooled DB connections")
        if connections := inbound_connections(process.process.pid, process.port):
            found.append(f"{where}: {connections} connections still open")
    metrics = gauges(stack.model.base_url)
    for name in ("tgi_batch_current_size", "tgi_queue_size", "kv_cache_blocks_used"):
        if metrics.get(name, 0):
            found.append(f"model server: {name} {metrics[name]:.0f}")
    pooled = sum(r["database_pool"].get("size", 0) for r in runtimes)
    server_url = stack.database_url.rsplit("/", 1)[0] + "/postgres"
    connected = database_connections(server_url, stack.database)
    if connected > pooled:
        found.append(f"postgres: {connected} connections, the pools hold {pooled}")
    return found


def rss_slopes(samples: list[Sample]) -> dict[str, float | None]:
    """Each process's RSS slope (MB/min) over the second half of the timed rows."""
    timed = [s for s in samples if not s.label]
    minutes = [s.minute for s in timed]
    slopes = {
        f"web {i}": second_half_slope(minutes, [s.rss_web_mb[i] for s in timed])
        for i in range(len(timed[0].rss_web_mb) if timed else 0)
    }
    slopes["inference"] = second_half_slope(minutes, [s.rss_inference_mb for s in timed])
    return slopes


def warm_up(stack: Stack) -> list[int]:
    """One question through every process, then each process's idle asyncio tasks."""

    async def ask_once() -> None:
        for url in stack.urls:
            visitor = Visitor("warm-up", [url], seed=-1)
            await visitor._new_chat()
            await visitor._ask()
            await visitor.close()
            if visitor.tally.problems:
                raise RuntimeError(f"the warm-up failed: {visitor.tally.problems}")

    asyncio.run(ask_once())
    return [_own_tasks(r) for r in wait_until_idle(stack)]


def _own_tasks(runtime: dict) -> int:
    """A process's asyncio tasks but the layer's reader, which lives on after its last
    receiver until the next message, so it is there or not whatever the traffic was."""
    return runtime["asyncio_tasks"] - runtime.get("layer_readers", 0)


def report(visitors: list[Visitor], stack: Stack, samples: list[Sample], runtimes: list[dict],
           baseline_tasks: list[int]) -> int:  # fmt: skip
    seen = [(message_id, s) for v in visitors for message_id, s in v.seen.items()]
    conversations = {c for v in visitors for c in v.conversations}
    comparison = compare(seen, conversations, stored_messages(stack.database_url))
    problems = [p for v in visitors for p in v.tally.problems]
    leaked = leaks(stack, runtimes, baseline_tasks)
    slopes = rss_slopes(samples)
    grown = steep(slopes)
    actions: dict[str, int] = {}
    for visitor in visitors:
        for action, count in visitor.tally.actions.items():
            actions[action] = actions.get(action, 0) + count
    print()
    print(
        f"{len(visitors)} visitors, {len(conversations)} conversations, "
        f"{sum(v.tally.answers for v in visitors)} answers "
        f"({sum(v.tally.answer_errors for v in visitors)} ended with an error), "
        f"{sum(v.tally.refusals for v in visitors)} hostile frames refused, "
        f"{sum(v.tally.reconnects for v in visitors)} reconnects; steps: "
        + ", ".join(f"{name} {count}" for name, count in sorted(actions.items()))
    )
    print(
        f"messages seen {comparison.num_seen}: lost or changed {comparison.num_lost} "
        f"(missing {comparison.missing}, changed {comparison.changed}, never shown "
        f"{comparison.unseen}, still generating {comparison.generating})"
    )
    print(idle_summary(stack, runtimes, baseline_tasks))
    print(
        "RSS slope over the second half, MB/min: "
        + ", ".join(
            f"{name} {'n/a' if value is None else f'{value:+.2f}'}"
            for name, value in slopes.items()
        )
    )
    for line in (comparison.examples or [])[:10] + problems[:20] + leaked + grown:
        print("  " + line)
    ok = not (comparison.num_lost or problems or leaked or grown)
    print(
        f"leaks: {len(leaked)}; problems: {len(problems)}; memory flat: {not grown}; "
        + ("PASS" if ok else "FAIL")
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="chatui-soak-"))
    databases = Databases(args.database_url)
    stack: Stack | None = None
    print(isa_line())
    print(
        f"soak: {args.minutes:g} min, {args.visitors} visitors, {args.web_processes} web "
        f"processes, answers up to {args.max_new_tokens} tokens",
        flush=True,
    )
    try:
        stack = start(args, databases, log_dir)
        prime_model_server(stack, args.max_new_tokens)
        baseline_tasks = warm_up(stack)
        visitors, samples = asyncio.run(drive(stack, args))
        runtimes = wait_until_idle(stack)
        idle = sample(stack, args.minutes, sum(v.tally.answers for v in visitors))
        idle.label = "end, idle"
        print_row(idle)
        samples.append(idle)
        return report(visitors, stack, samples, runtimes, baseline_tasks)
    except (httpx.HTTPError, RuntimeError, TimeoutError, subprocess.CalledProcessError) as exc:
        print(f"soak failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if stack is not None:
            stop(stack)
        databases.drop_all()
        if args.keep_logs:
            print(f"logs: {log_dir}")
        else:
            shutil.rmtree(log_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
