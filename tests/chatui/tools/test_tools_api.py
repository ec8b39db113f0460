"""`/api/tools`: what a user is offered, what they turn off (theirs alone), and the servers
they may add: refused when the operator has not allowed it, and refused by the SSRF rule for
127.0.0.1, 169.254.169.254 and a name that resolves to loopback."""

from __future__ import annotations

import pytest

from chatui.services.tool_settings import USER_SERVERS_OFF, tool_settings_get
from chatui.tools.catalog import ToolCatalog
from chatui.tools.setup import set_catalog
from tests.chatui.helpers import make_owner

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def builtins_only():
    previous = set_catalog(ToolCatalog())
    yield
    set_catalog(previous)


def patch(client, body):
    return client.patch("/api/tools", body, content_type="application/json")


def test_turning_tools_off_is_per_user() -> None:
    alice, bob = make_owner("alice").client(), make_owner("bob").client()
    data = alice.get("/api/tools").json()
    assert [s["name"] for s in data["servers"]] == ["builtin"]
    assert {t["name"] for t in data["tools"]} == {"calculator", "current_datetime"}
    assert all(t["enabled"] for t in data["tools"]) and data["allow_user_servers"] is False

    data = patch(alice, {"disabled": ["builtin/calculator"]}).json()
    enabled = {t["name"]: t["enabled"] for t in data["tools"]}
    assert enabled == {"calculator": False, "current_datetime": True}
    data = patch(alice, {"disabled": ["server:builtin"]}).json()
    assert not any(t["enabled"] for t in data["tools"]) and not data["servers"][0]["enabled"]
    assert all(t["enabled"] for t in bob.get("/api/tools").json()["tools"])  # alice's alone

    assert patch(alice, {"disabled": "calculator"}).status_code == 400
    assert alice.post("/api/tools").status_code == 405


def test_user_servers_need_the_operators_leave() -> None:
    client = make_owner("carol").client()
    response = patch(client, {"servers": [{"name": "mine", "url": "https://example.com/mcp"}]})
    assert response.status_code == 403 and response.json()["error"] == USER_SERVERS_OFF


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000/mcp", "http://169.254.169.254/latest", "http://localhost:3001/mcp"],
)
def test_ssrf_probes_are_refused(settings, url: str) -> None:
    settings.CHATUI_MCP_ALLOW_USER_SERVERS = True
    client = make_owner("dave").client()
    response = patch(client, {"servers": [{"name": "probe", "url": url}]})
    assert response.status_code == 400
    assert "not allowed" in response.json()["error"]
    assert [s["name"] for s in client.get("/api/tools").json()["servers"]] == ["builtin"]


def test_an_allowed_server_is_kept_without_showing_its_headers(settings) -> None:
    settings.CHATUI_MCP_ALLOW_USER_SERVERS = True
    settings.CHATUI_MCP_ALLOW_PRIVATE_URLS = True  # an intranet: nothing listens there
    owner = make_owner("erin")
    client = owner.client()
    server = {"name": "intranet", "url": "http://127.0.0.1:9/mcp", "headers": {"X-Key": "s3"}}
    assert patch(client, {"servers": [{**server, "name": "builtin"}]}).status_code == 400
    data = patch(client, {"servers": [server]}).json()
    mine = data["servers"][-1]
    assert mine == {
        "name": "intranet",
        "transport": "streamable-http",
        "url": "http://127.0.0.1:9/mcp",
        "is_user": True,
        "enabled": True,
        "num_tools": 0,  # unreachable: listed as having none, the page still works
    }
    assert "s3" not in client.get("/api/tools").content.decode()
    kept = {"name": "intranet", "url": "http://127.0.0.1:9/mcp"}  # as the page sends it back
    patch(client, {"servers": [kept], "disabled": ["server:intranet"]})
    stored = tool_settings_get(identity=owner.identity)
    assert stored["servers"][0]["headers"] == {"X-Key": "s3"}
    assert stored["disabled"] == ["server:intranet"]
