"""The measurements and end checks of `bench.soak`, each read from outside the processes: the
web processes' `/admin/runtime.json` (as staff) and their sockets and memory (psutil), the model
server's `/metrics`, Postgres's `pg_stat_activity` and the stored messages, compared with what
the visitors saw.

Must not import Django or `chatui`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import psutil
import psycopg

from bench.soak_visitor import Seen

# -- the processes -------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    """Resident memory of the process and its children."""
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


def inbound_connections(pid: int, port: int) -> int:
    """Established TCP connections the process accepted on `port` (open pages and requests)."""
    return sum(
        1
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
    )


def gauges(base_url: str) -> dict[str, float]:
    """The unlabelled samples of a Prometheus `/metrics` page."""
    text = httpx.get(base_url + "/metrics", timeout=10).text
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, _, value = line.partition(" ")
            values[name] = float(value)
    return values


class StaffClient:
    """A staff session for `/admin/runtime.json`, logged in through the admin's own form."""

    def __init__(self) -> None:
        self.http = httpx.Client(timeout=30)

    def login(self, base_url: str, username: str, password: str) -> None:
        login_url = base_url + "/admin/login/"
        self.http.get(login_url).raise_for_status()
        form = {
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": self.http.cookies.get("csrftoken", ""),
            "next": "/admin/",
        }
        done = self.http.post(login_url, data=form, headers={"Origin": base_url})
        if done.status_code != 302:
            raise RuntimeError(f"the admin login failed ({done.status_code})")

    def runtime(self, base_url: str) -> dict[str, Any]:
        """The process's counts, on a connection closed right after (not counted as open)."""
        response = self.http.get(base_url + "/admin/runtime.json", headers={"Connection": "close"})
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        self.http.close()


# -- the database --------------------------------------------------------------------------------


def database_connections(server_url: str, database: str) -> int:
    """Backends connected to `database`, this query's own excluded."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class Stored:
    conversation_id: str
    role: str
    parent_id: str | None
    content: str
    is_generating: bool


def stored_messages(database_url: str) -> dict[str, Stored]:
    """Every message of the database, by id."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT id, conversation_id, role, parent_id, content, is_generating "
            "FROM chatui_message"
        ).fetchall()
    return {
        str(r[0]): Stored(str(r[1]), r[2], str(r[3]) if r[3] else None, r[4], r[5]) for r in rows
    }


@dataclass
class Comparison:
    """The database against the visitors: every difference is a message lost or changed."""

    num_seen: int = 0
    missing: int = 0  # seen by a visitor, not stored
    changed: int = 0  # stored with other content, role or parent than the visitor saw
    unseen: int = 0  # stored in a visitor's conversation, never shown to it
    generating: int = 0  # still generating after the soak
    examples: list[str] | None = None

    @property
    def num_lost(self) -> int:
        return self.missing + self.changed + self.unseen + self.generating


def compare(
    seen: Iterable[tuple[str, Seen]], conversations: set[str], stored: dict[str, Stored]
) -> Comparison:
    result = Comparison(examples=[])
    assert result.examples is not None
    seen_ids = set()
    for message_id, message in seen:
        seen_ids.add(message_id)
        result.num_seen += 1
        row = stored.get(message_id)
        if row is None:
            result.missing += 1
            result.examples.append(f"missing {message.role} {message_id}")
            continue
        same = (row.role, row.parent_id, row.conversation_id) == (
            message.role,
            message.parent_id,
            message.conversation_id,
        )
        if not same or (message.is_final and row.content != message.content):
            result.changed += 1
            result.examples.append(
                f"changed {message_id}: saw {message.content[:40]!r}, stored {row.content[:40]!r}"
            )
    for message_id, row in stored.items():
        if row.is_generating:
            result.generating += 1
            result.examples.append(f"still generating {message_id}")
        if row.conversation_id in conversations and message_id not in seen_ids:
            result.unseen += 1
            result.examples.append(f"never shown {row.role} {message_id}")
    return result
