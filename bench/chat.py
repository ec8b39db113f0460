"""`python -m bench.chat` / `make bench-chat`: the chat app's streaming path under load.

`--clients` visitors (default 200) each open their own conversation and ask one question at the
same moment; a fast fake TGI endpoint (`bench.chat_endpoint`, its own process) answers each with
`--tokens` tokens (default 50), one every `--token-delay-ms` (default 5). Every token carries the
time it left the endpoint, so each visitor measures the latency the app adds between the
endpoint's socket and the browser's websocket. Three configurations, one table:

- one daphne on the in-memory channel layer,
- one daphne on the Redis layer,
- two daphnes on the Redis layer, the visitors split between them,

each web process started as production starts it (`python -m config.serve`: daphne on uvloop,
the production settings with their Postgres connection pool), all on Postgres (a fresh clone of
one migrated database each), so database writes are counted the same way everywhere:
Postgres's row counters for the clone (`pg_stat_user_tables`), read after the web processes
exit. "writes/answer" counts the rows inserted or updated in messages
and conversations (the user's message, the answer, its batched saves and final save, the
conversation's time and title); "answer row" counts only the writes of the answer's own row
(insert, batched saves, final). Creating sessions and conversations beforehand is not counted.
Targets: p95 added latency under 50 ms, answer-row writes at most 3 + one per 32 tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.chat_clients import Outcome, run_visitors
from bench.chat_stack import Databases, WebProcess, fake_endpoint, web_env
from bench.processes import migrate


@dataclass(frozen=True)
class Setup:
    label: str
    num_processes: int
    uses_redis: bool


SETUPS = {
    "memory": Setup("1 daphne, in-memory layer", 1, False),
    "redis": Setup("1 daphne, Redis layer", 1, True),
    "redis-x2": Setup("2 daphnes, Redis layer", 2, True),
}


@dataclass
class Row:
    setup: Setup
    num_clients: int
    num_ok: int
    p50_ms: float
    p95_ms: float
    answers_per_s: float
    writes_per_answer: float
    answer_row_writes: float
    peak_rss_mb: list[float]
    num_tokens: int

    @property
    def meets_targets(self) -> bool:
        budget = 3 + self.num_tokens / 32
        complete = self.num_ok == self.num_clients
        return complete and self.p95_ms < 50 and self.answer_row_writes <= budget


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.chat", description=__doc__)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--token-delay-ms", type=float, default=5.0)
    parser.add_argument("--setups", default=",".join(SETUPS), help="comma-separated")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/test",
        help="any database on the Postgres server to use (scratch databases are made there)",
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    )
    parser.add_argument(
        "--settings",
        default="config.settings.base",
        help="DJANGO_SETTINGS_MODULE of the web processes (to compare a settings change)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="print the log directory")
    return parser.parse_args(argv)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def _message_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT role, count(*) FROM chatui_message GROUP BY role").fetchall()
    return dict(rows)


def run_setup(
    setup: Setup, args: argparse.Namespace, databases: Databases, template: str, endpoint: str
) -> Row:
    name = databases.create(template=template)
    redis_url = args.redis_url if setup.uses_redis else ""
    env = web_env(
        database_url=databases.url(name),
        redis_url=redis_url,
        endpoint_url=endpoint,
        settings_module=args.settings,
    )
    slug = setup.label.split(",")[0].replace(" ", "-")
    log_dir = Path(args.log_dir)
    processes = [
        WebProcess(env, log_dir / f"{slug}-{'memory' if not redis_url else 'redis'}-{i}.log")
        for i in range(setup.num_processes)
    ]
    try:
        for process in processes:
            process.wait_ready()
        outcomes = asyncio.run(run_visitors([p.url for p in processes], args.clients))
        peak_rss = [p.peak_rss_bytes() / 2**20 for p in processes]
    finally:
        for process in processes:
            process.stop()
    return _row(setup, args, outcomes, peak_rss, databases, name)


def _row(
    setup: Setup,
    args: argparse.Namespace,
    outcomes: list[Outcome],
    peak_rss: list[float],
    databases: Databases,
    name: str,
) -> Row:
    ok = [o for o in outcomes if not o.error and o.num_tokens == args.tokens]
    for outcome in outcomes:
        if outcome.error:
            print(f"  error: {outcome.error}")
            break
    latencies_ms = [ns / 1e6 for o in ok for ns in o.latencies_ns]
    span = max(o.done_at for o in ok) - min(o.sent_at for o in ok) if ok else math.nan
    writes = databases.row_writes(name)
    counts = _message_counts(databases.url(name))
    num_answers = max(1, counts.get("assistant", 0))
    message_ins, message_upd = writes.get("chatui_message", (0, 0))
    _, conversation_upd = writes.get("chatui_conversation", (0, 0))
    answer_row = message_ins - counts.get("user", 0) + message_upd
    return Row(
        setup=setup,
        num_clients=len(outcomes),
        num_ok=len(ok),
        p50_ms=percentile(latencies_ms, 0.50),
        p95_ms=percentile(latencies_ms, 0.95),
        answers_per_s=len(ok) / span if span else math.nan,
        writes_per_answer=(message_ins + message_upd + conversation_upd) / num_answers,
        answer_row_writes=answer_row / num_answers,
        peak_rss_mb=peak_rss,
        num_tokens=args.tokens,
    )


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    header = (
        "| setup | clients ok | added latency p50 ms | p95 ms | answers/s "
        "| DB writes/answer (answer row) | peak RSS MB per process | targets |"
    )
    print()
    print(header)
    print("|" + "|".join("---" for _ in header.split("|")[1:-1]) + "|")
    for row in rows:
        rss = " + ".join(f"{mb:.0f}" for mb in row.peak_rss_mb)
        print(
            f"| {row.setup.label} | {row.num_ok}/{row.num_clients} | {row.p50_ms:.1f} "
            f"| {row.p95_ms:.1f} | {row.answers_per_s:.0f} "
            f"| {row.writes_per_answer:.2f} ({row.answer_row_writes:.2f}) | {rss} "
            f"| {'met' if row.meets_targets else 'NOT met'} |"
        )
    budget = 3 + args.tokens / 32
    print(
        f"\n{args.clients} visitors, one question each, all at once; {args.tokens} tokens per "
        f"answer, one every {args.token_delay_ms:g} ms; Postgres for every setup. Targets: "
        f"p95 < 50 ms, answer-row writes <= {budget:.2f}."
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setups = [SETUPS[name.strip()] for name in args.setups.split(",") if name.strip()]
    args.log_dir = tempfile.mkdtemp(prefix="chatui-bench-chat-")
    databases = Databases(args.database_url)
    rows: list[Row] = []
    started = time.monotonic()
    try:
        with fake_endpoint(args.tokens, args.token_delay_ms, Path(args.log_dir)) as endpoint:
            template = databases.create()
            migrate(
                web_env(database_url=databases.url(template), redis_url="", endpoint_url=endpoint)
            )
            for setup in setups:
                print(f"{setup.label}: {args.clients} visitors...", flush=True)
                rows.append(run_setup(setup, args, databases, template, endpoint))
    finally:
        databases.drop_all()
        if args.keep_logs:
            print(f"logs: {args.log_dir}")
        else:
            shutil.rmtree(args.log_dir, ignore_errors=True)
    print_table(rows, args)
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
