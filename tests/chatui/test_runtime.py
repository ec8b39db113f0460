"""`/admin/runtime.json`: one process's counts (sockets, answers, tasks), for staff only."""

from __future__ import annotations

import asyncio

import pytest
from django.contrib.auth import get_user_model
from django.test import AsyncClient

from tests.chatui.fake_endpoints import Script
from tests.chatui.helpers import connect, db, receive_until, setup_owner, wait_idle

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/admin/runtime.json"


async def test_runtime_counts_are_for_staff_only():
    client = AsyncClient()
    assert (await client.get(URL)).status_code == 302  # to the admin login
    visitor = await db(get_user_model().objects.create_user)("visitor", password="pw-123456")
    await client.aforce_login(visitor)
    response = await client.get(URL)
    assert response.status_code == 302 and b"asyncio_tasks" not in response.content


async def test_runtime_counts_sockets_and_answers_and_return_to_idle(endpoints):
    endpoints.tgi.queue(Script(tokens=[f"t{i} " for i in range(100)], delay=0.02))
    staff = await db(get_user_model().objects.create_superuser)("root", "r@x.org", "pw-123456")
    client = AsyncClient()
    await client.aforce_login(staff)
    owner, cid = await setup_owner()
    idle = (await client.get(URL)).json()

    socket = await connect(owner, cid)
    await socket.send_json_to({"type": "send", "content": "hi", "parent_id": None})
    await receive_until(socket, "token")
    busy = (await client.get(URL)).json()
    assert busy["sockets"] == idle["sockets"] + 1
    assert busy["generations"] == idle["generations"] + 1 == busy["unsaved_answers"]
    assert busy["asyncio_tasks"] > idle["asyncio_tasks"]

    await receive_until(socket, "final")
    await wait_idle(cid)
    await socket.disconnect()
    # The consumer's disconnect handler runs on the server's loop after the close: poll a while.
    expected = (idle["sockets"], idle["generations"], idle["unsaved_answers"])
    deadline = asyncio.get_running_loop().time() + 5.0
    while True:
        done = (await client.get(URL)).json()
        counts = (done["sockets"], done["generations"], done["unsaved_answers"])
        if counts == expected or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert counts == expected
