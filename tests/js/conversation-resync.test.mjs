// The conversation reducer (static/chatui/conversation.js) against the websocket protocol of
// docs/chat-protocol.md: resync after a reconnect and pending text.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { apply, beginSend, createState, takePending } from "../../static/chatui/conversation.js";

import { CID, msg, snapshot, token, message, loaded } from "./conversation-factories.mjs";

// --- resync after a reconnect --------------------------------------------------------------------

describe("resync", () => {
  test("a snapshot mid-answer, then the whole text at offset 0, then the rest: no duplicates", () => {
    const state = loaded([msg("u1", null, "user")]);
    apply(state, message(msg("a1", "u1", "assistant", { content: "", is_generating: true })));
    apply(state, token("a1", "Hello", 0));
    // The socket drops; the database snapshot is behind the tokens already shown.
    const behind = msg("a1", "u1", "assistant", { content: "Hel", is_generating: true });
    apply(state, snapshot([msg("u1", null, "user"), behind]));
    assert.equal(state.tree.get("a1").content, "Hel");
    assert.equal(state.busy, true);
    apply(state, token("a1", "Hello wor", 0));
    apply(state, token("a1", "world", 6));
    apply(state, token("a1", "!", 11));
    assert.equal(state.tree.get("a1").content, "Hello world!");
  });

  test("a snapshot that already holds the tokens sent after it skips them", () => {
    const state = createState(CID);
    const ahead = msg("a1", "u1", "assistant", { content: "Hello world", is_generating: true });
    apply(state, snapshot([msg("u1", null, "user"), ahead]));
    apply(state, token("a1", "world", 6));
    apply(state, token("a1", "!", 11));
    assert.equal(state.tree.get("a1").content, "Hello world!");
  });

  test("a snapshot after the answer ended makes the page idle", () => {
    const state = loaded([msg("u1", null, "user")]);
    apply(state, message(msg("a1", "u1", "assistant", { content: "", is_generating: true })));
    const change = apply(state, snapshot([msg("u1", null, "user"), msg("a1", "u1", "assistant")]));
    assert.equal(change.busy, false);
    assert.equal(state.generatingId, null);
  });
});

describe("pending text", () => {
  test("is taken once", () => {
    const state = createState(CID);
    beginSend(state, "hi");
    assert.equal(takePending(state), "hi");
    assert.equal(takePending(state), null);
  });
});
