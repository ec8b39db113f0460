"""How answers render: highlighted code with a copy button, inert HTML, LaTeX."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.chatui.fake_endpoints import Script
from tests.e2e.conftest import Fakes
from tests.e2e.pages import ask, js_constant, last_answer, open_home, user_bubbles

pytestmark = pytest.mark.browser

COPIED = js_constant("markdown.js", "COPIED_LABEL")

CODE = "def double(x):\n    return x * 2"
XSS_IMG = '<img src=x onerror="window.__pwned = 1">'
XSS_SCRIPT = "<script>window.__pwned = 2</script>"


def test_code_block_is_highlighted_and_copyable(page: Page, fakes: Fakes) -> None:
    fakes.a.script = Script(tokens=["Here you go:\n\n", "```python\n", CODE, "\n```\n"])
    open_home(page)
    ask(page, "Write a function")

    block = last_answer(page).locator(".code-block")
    expect(block.locator(".code-lang")).to_have_text("python")
    expect(block.locator("code.hljs .hljs-keyword").first).to_have_text("def")
    expect(block.locator("pre")).to_have_text(CODE)

    block.locator(".copy-code").click()
    expect(block.locator(".copy-code")).to_have_text(COPIED)
    assert page.evaluate("navigator.clipboard.readText()") == CODE


def test_html_in_messages_stays_inert_text(page: Page, fakes: Fakes) -> None:
    fakes.a.script = Script(tokens=["Echo: ", XSS_IMG, " and ", XSS_SCRIPT])
    open_home(page)
    ask(page, f"{XSS_IMG} {XSS_SCRIPT}")

    expect(user_bubbles(page)).to_have_text([f"{XSS_IMG} {XSS_SCRIPT}"])
    expect(last_answer(page)).to_contain_text(XSS_IMG)
    expect(last_answer(page)).to_contain_text(XSS_SCRIPT)
    assert page.locator("#messages img, #messages script").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_latex_renders_with_katex(page: Page, fakes: Fakes) -> None:
    fakes.a.script = Script(
        tokens=[
            "Euler: $e^{i\\pi} + 1 = 0$, inline \\(a^2 + b^2\\) and\n\n",
            "$$\\int_0^1 x\\,dx = \\frac{1}{2}$$\n\n",
            "\\[\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}\\]\n\n",
            "Prices like $5 and $10 stay text.",
        ]
    )
    open_home(page)
    ask(page, "Show me some math")

    body = last_answer(page)
    expect(body.locator(".katex")).to_have_count(4)
    expect(body.locator(".katex-display")).to_have_count(2)
    expect(body.locator(".katex-error")).to_have_count(0)
    expect(body).to_contain_text("Prices like $5 and $10 stay text.")
