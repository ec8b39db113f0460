"""The page's pure modules, run in the browser: date groups and the message tree."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.e2e.conftest import Fakes
from tests.e2e.pages import open_home

pytestmark = pytest.mark.browser


def run(page: Page, module: str, body: str):
    """Evaluates `body` (an async function body) with the module's exports in `m`."""
    return page.evaluate(
        f"async () => {{ const m = await import('/static/chatui/{module}'); {body} }}"
    )


def test_sidebar_groups_follow_chat_ui(page: Page, fakes: Fakes) -> None:
    open_home(page)
    groups = run(
        page,
        "sidebar.js",
        """
        const now = new Date("2026-03-15T12:00:00Z");
        const ago = (days) => new Date(now.getTime() - days * 86400000).toISOString();
        return [0.5, 2, 6.9, 8, 27, 40, 400].map((d) => m.groupOf(ago(d), now));
        """,
    )
    assert groups == [
        "Today",
        "This week",
        "This week",
        "This month",
        "This month",
        "Older",
        "Older",
    ]


def test_message_tree_shows_the_newest_branch_unless_one_is_chosen(
    page: Page, fakes: Fakes
) -> None:
    open_home(page)
    result = run(
        page,
        "tree.js",
        """
        const msg = (id, parent_id, role) => ({ id, parent_id, role, content: id });
        const tree = new m.MessageTree([
          msg("sys", null, "system"),
          msg("u1", "sys", "user"), msg("a1", "u1", "assistant"),
          msg("a2", "u1", "assistant"),
          msg("u2", "a1", "user"), msg("a3", "u2", "assistant"),
        ]);
        const ids = () => tree.path().map((x) => x.id).join(",");
        const out = { newest: ids(), siblings: tree.siblings(tree.get("a1")).map((x) => x.id) };
        tree.choose(tree.get("a1"));
        out.chosen = ids();
        tree.reveal(tree.get("a2"));
        out.revealed = ids();
        tree.add({ ...tree.get("a2"), content: "edited" });
        out.updated = tree.get("a2").content;
        out.size = tree.size;
        out.leaf = tree.leaf().id;
        return out;
        """,
    )
    assert result == {
        "newest": "sys,u1,a2",
        "siblings": ["a1", "a2"],
        "chosen": "sys,u1,a1,u2,a3",
        "revealed": "sys,u1,a2",
        "updated": "edited",
        "size": 6,
        "leaf": "a2",
    }
