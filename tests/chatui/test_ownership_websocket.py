"""Hostile users on the websocket: an intruder's socket on a victim's conversation is closed at
once, and the victim's message ids sent through the intruder's own conversation are not found,
while the victim's answer streams on untouched.
"""

from __future__ import annotations

import pytest
from django.conf import settings

from chatui.consumers import CLOSE_FORBIDDEN
from chatui.selectors import MESSAGE_NOT_FOUND
from tests.chatui.fake_endpoints import Script
from tests.chatui.helpers import TIMEOUT, Owner, connect, db, receive_until
from tests.chatui.ownership_people import Person, make_person


def _ws_person(name: str) -> tuple[Person, Owner]:
    """A person and their session cookie, for the websocket helpers."""
    person = make_person(name)
    cookie = person.client().cookies[settings.SESSION_COOKIE_NAME].value
    return person, Owner(person.identity, cookie, person.user)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("intruder_name", "victim_name"),
    [("visitor1", "visitor2"), ("user1", "user2"), ("visitor1", "user1"), ("user1", "visitor1")],
)
async def test_the_websocket_refuses_everything_on_foreign_data(
    endpoints, intruder_name, victim_name
):
    from channels.testing import WebsocketCommunicator

    from config.asgi import application

    intruder, intruder_owner = await db(_ws_person)(intruder_name)
    victim, victim_owner = await db(_ws_person)(victim_name)
    endpoints.tgi.queue(Script(tokens=[f"w{i} " for i in range(30)], delay=0.03))
    # The victim's answer is streaming while the intruder tries everything.
    victim_socket = await connect(victim_owner, victim.conversation_id)
    await victim_socket.send_json_to(
        {"type": "send", "content": "go on", "parent_id": victim.answer_id}
    )
    await receive_until(victim_socket, "token")
    before = await db(victim.state)()

    requests = [
        {"type": "send", "content": "hijack", "parent_id": victim.answer_id},
        {"type": "edit", "message_id": victim.question_id, "content": "hijack"},
        {"type": "regenerate", "message_id": victim.answer_id},
        {"type": "continue", "message_id": victim.answer_id},
        {"type": "stop"},
    ]
    # Straight at the victim's conversation: refused at once, and what follows is ignored.
    foreign = WebsocketCommunicator(
        application,
        f"/ws/conversations/{victim.conversation_id}/",
        headers=intruder_owner.headers(),
    )
    assert (await foreign.connect(timeout=TIMEOUT))[0]
    close = await foreign.receive_output(timeout=TIMEOUT)
    assert close == {"type": "websocket.close", "code": CLOSE_FORBIDDEN}
    for request in requests:
        await foreign.send_json_to(request)
    assert await foreign.receive_nothing(timeout=0.3)
    await foreign.disconnect()
    # Through the intruder's own conversation, with the victim's message ids.
    own = await connect(intruder_owner, intruder.conversation_id)
    for request in requests[:4]:
        await own.send_json_to(request)
        event = await own.receive_json_from(timeout=TIMEOUT)
        assert event == {"type": "error", "message": MESSAGE_NOT_FOUND, "message_id": None}
    await own.send_json_to({"type": "stop"})  # stops nothing of the victim's
    assert await own.receive_nothing(timeout=0.3)
    await own.disconnect()

    final = (await receive_until(victim_socket, "final"))[-1]["message"]
    assert final["content"].startswith("w0 w1") and "w29" in final["content"]
    assert final["finish_reason"] != "stopped" and not final["interrupted"]
    status = (await receive_until(victim_socket, "status"))[-1]
    assert status["status"] == "done"
    await victim_socket.disconnect()
    after = await db(victim.state)()
    conversations, messages, *others = after
    assert conversations == before[0] and others == before[2:]
    # Only the victim's own answer moved on (it finished streaming); nothing was added.
    assert [m["id"] for m in messages] == [m["id"] for m in before[1]]
    assert all("hijack" not in m["content"] for m in messages)
