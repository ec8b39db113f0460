"""Token batching of a busy process (`chatui.streaming.publish.TokenBatcher`): tokens that arrive
within one tick leave as one `token` event at the first one's offset, so the page's offset rule
still places them; a quiet process sends each token at once."""

from __future__ import annotations

import asyncio

from chatui.streaming.publish import TokenBatcher
from tests.chatui.durable.cluster import apply_tokens

TICK_S = 0.05


async def test_tokens_of_one_tick_leave_together_and_in_order():
    sent: list[dict] = []

    async def emit(payload: dict) -> None:
        sent.append(payload)

    batcher = TokenBatcher(emit, "m1", TICK_S)
    await batcher.add("Hel", 0, batch=False)  # quiet: at once
    assert [e["token"] for e in sent] == ["Hel"]
    for token, offset in (("lo", 3), (",", 5), (" wor", 6)):
        await batcher.add(token, offset, batch=True)
    assert len(sent) == 1  # waiting for the tick
    await asyncio.sleep(TICK_S * 3)
    assert sent[-1] == {"type": "token", "message_id": "m1", "token": "lo, wor", "offset": 3}
    await batcher.add("ld", 10, batch=True)
    await batcher.flush()  # what the answer's end does before `final`
    assert [(e["token"], e["offset"]) for e in sent] == [("Hel", 0), ("lo, wor", 3), ("ld", 10)]
    assert apply_tokens("", sent, "m1") == "Hello, world"
    await asyncio.sleep(TICK_S * 2)
    assert len(sent) == 3  # the flushed batch's timer sends nothing more
