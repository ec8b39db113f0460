"""XSS in a real browser: hostile user messages, model answers (streamed by a hostile fake TGI on
a real socket), titles, model names, the app name and shared snapshots render as text or
sanitised markup, and every page carries a Content-Security-Policy.

Every payload calls `window.__xss(...)` or `alert(...)`; both are hooked before any page script
runs, as is the CSP violation event, so a payload that ran, or one the policy had to stop
(markup that got past the sanitiser), fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, expect

from tests.chatui.fake_endpoints import FakeTGI, Script
from tests.e2e.conftest import new_context
from tests.e2e.pages import (
    ask,
    conversation_id,
    open_home,
    sidebar_items,
    user_bubbles,
)
from tests.e2e.server import LiveServer, models_config

pytestmark = pytest.mark.browser

HOOKS = """
window.__xssHits = [];
window.__xss = (tag) => window.__xssHits.push(String(tag));
for (const name of ["alert", "confirm", "prompt"]) {
  window[name] = (message) => window.__xssHits.push(`${name}:${message}`);
}
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""

PAYLOADS = (
    '<script>window.__xss("script")</script>',
    "<img src=x onerror=\"window.__xss('img')\">",
    '<svg onload="alert(\'svg\')"><script>window.__xss("svg-script")</script></svg>',
    "<svg><animate onbegin=\"window.__xss('animate')\" attributeName=x dur=1s>",
    "<iframe src=\"javascript:window.__xss('iframe')\"></iframe>",
    "<details open ontoggle=\"window.__xss('details')\"><summary>x</summary></details>",
    "<a href=\"javascript:window.__xss('a')\">html link</a>",
    "[markdown link](javascript:window.__xss('md-link'))",
    "[entity link](&#106;avascript:alert('entity'))",
    "![markdown image](x\" onerror=\"window.__xss('md-img'))",
    "![js image](javascript:window.__xss('md-img-js'))",
    '<math><mtext><table><mglyph><style><img src=x onerror=window.__xss("mxss")>',
    "$\\href{javascript:window.__xss('katex')}{formula link}$",
    '```html\n<script>window.__xss("code")</script>\n```',
    "<form action=\"javascript:window.__xss('form')\"><button>go</button></form>",
)
MESSAGE = "\n\n".join(PAYLOADS)
TITLE = '<img src=x onerror=alert("title")><script>alert("t")</script>'
APP_NAME = '<img src=x onerror=alert("app")>App'
DISPLAY_NAME = '<svg onload=alert("name")>Evil model'
DESCRIPTION = '<script>window.__xss("description")</script> described'
EXAMPLE_TITLE = '<img src=x onerror=window.__xss("example")>'


def hostile_models(url_a: str, url_b: str) -> list[dict]:
    models = models_config(url_a, url_b)
    models[0] |= {
        "displayName": DISPLAY_NAME,
        "description": DESCRIPTION,
        "websiteUrl": "javascript:window.__xss('website')",
        "promptExamples": [{"title": EXAMPLE_TITLE, "prompt": PAYLOADS[0]}],
    }
    return models


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[LiveServer, FakeTGI]]:
    """The app against a fake TGI whose answers are the payloads, with hostile model names."""
    with FakeTGI() as fake, FakeTGI() as other:
        server = LiveServer(
            hostile_models(fake.url, other.url), extra_env={"PUBLIC_APP_NAME": APP_NAME}
        )
        with server:
            yield server, fake


@dataclass
class Visitor:
    """A fresh browser context with the hooks, its tab, and the requests that left the app."""

    context: BrowserContext
    page: Page
    foreign_requests: list[str]


def visitor(browser: Browser, server: LiveServer) -> Visitor:
    context = new_context(browser, server)
    context.add_init_script(script=HOOKS)
    page = context.new_page()
    foreign: list[str] = []

    def note(request: Request) -> None:
        if urlsplit(request.url).port != server.port and not request.url.startswith("data:"):
            foreign.append(request.url)

    page.on("request", note)
    return Visitor(context, page, foreign)


def assert_nothing_ran(who: Visitor) -> None:
    """No payload ran, the policy had nothing to stop, no request left the app, and no element
    could run script (no handler attribute, no javascript: URL, no script or frame), and no
    message holds a form."""
    page = who.page
    assert page.evaluate("window.__xssHits") == []
    assert page.evaluate("window.__cspViolations") == []
    assert who.foreign_requests == []
    live = page.evaluate(
        """() => [...document.querySelectorAll("body *")].flatMap((el) => [
            ...[...el.attributes]
                .filter((a) => a.name.startsWith("on") ||
                    /^\\s*(javascript|vbscript|data:text\\/html)/i.test(a.value))
                .map((a) => `${el.tagName} ${a.name}=${a.value}`),
            ...(["SCRIPT", "IFRAME", "OBJECT", "EMBED"].includes(el.tagName) &&
                !(el.tagName === "SCRIPT" && el.type === "application/json")
                ? [el.outerHTML.slice(0, 80)] : []),
        ])"""
    )
    assert live == []
    assert page.locator("#messages form, #messages input, #messages textarea").count() == 0


def csrf_headers(context: BrowserContext) -> dict[str, str]:
    token = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
    return {"X-CSRFToken": token, "Content-Type": "application/json"}


def test_hostile_text_renders_inert_everywhere(browser: Browser, hostile) -> None:
    server, fake = hostile
    # The answer streams in small pieces, so each re-render sees half-written markup too.
    fake.script = Script(tokens=[MESSAGE[i : i + 7] for i in range(0, len(MESSAGE), 7)])
    author = visitor(browser, server)
    page = author.page

    open_home(page)
    expect(page.locator("#model-name")).to_have_text(DISPLAY_NAME)
    expect(page.locator("#model-desc")).to_have_text(DESCRIPTION)
    expect(page.locator("#model-link")).to_be_hidden()
    expect(page.locator("#examples")).to_contain_text(EXAMPLE_TITLE)
    expect(page.locator(".brand span").first).to_have_text(APP_NAME)
    assert_nothing_ran(author)

    answer = ask(page, MESSAGE)
    expect(user_bubbles(page)).to_have_text([MESSAGE])
    expect(answer).to_contain_text("html link")
    expect(answer).to_contain_text('<script>window.__xss("script")</script>')
    expect(answer.locator(".code-block pre")).to_contain_text("<script>")
    cid = conversation_id(page)
    assert_nothing_ran(author)

    headers = csrf_headers(author.context)
    response = page.request.patch(
        f"/api/conversations/{cid}", data={"title": TITLE}, headers=headers
    )
    assert response.ok, response.text()
    page.reload()
    expect(page.locator("#app")).to_have_attribute("data-ready", "true")
    expect(page.locator("#conv-title")).to_have_text(TITLE)
    expect(sidebar_items(page).first).to_contain_text(TITLE)
    assert TITLE in page.title()
    page.locator("#open-settings").click()
    expect(page.locator("#settings-model")).to_contain_text(DISPLAY_NAME)
    assert_nothing_ran(author)

    share = page.request.post(f"/api/conversations/{cid}/share", data={}, headers=headers)
    assert share.status == 201, share.text()
    shared_url = share.json()["url"]
    author.context.close()

    # Another visitor opens the snapshot.
    reader = visitor(browser, server)
    reader.page.goto(shared_url)
    expect(reader.page.locator("#shared-title")).to_have_text(TITLE)
    expect(reader.page.locator("#messages .msg-user .msg-bubble")).to_have_text([MESSAGE])
    expect(reader.page.locator("#messages .msg-assistant .msg-body")).to_contain_text("html link")
    expect(reader.page.locator("#messages .msg-model")).to_have_text(DISPLAY_NAME)
    assert_nothing_ran(reader)
    reader.context.close()


@pytest.mark.parametrize("path", ["/", "/r/nothing", "/login", "/signup", "/admin/login/"])
def test_every_page_has_the_policy_and_runs_without_violations(
    browser: Browser, app_server: LiveServer, path: str
) -> None:
    who = visitor(browser, app_server)
    response = who.page.goto(path)
    assert response is not None
    directives = dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )
    assert directives["script-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    who.page.wait_for_load_state("networkidle")
    assert_nothing_ran(who)
    who.context.close()
