// The conversation reducer (static/chatui/conversation.js) against the websocket protocol of
// docs/chat-protocol.md: snapshots: what a state holds after reading a conversation.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { apply, beginSend, chooseBranch, createState } from "../../static/chatui/conversation.js";

import { CID, msg, conversation, snapshot, loaded, ids } from "./conversation-factories.mjs";

// --- snapshots ---------------------------------------------------------------------------------

describe("snapshot", () => {
  test("a new state is empty, idle and not loaded", () => {
    const state = createState(CID);
    assert.equal(state.conversationId, CID);
    assert.equal(state.busy, false);
    assert.equal(state.loaded, false);
    assert.deepEqual(ids(state), []);
  });

  test("loads the tree, hides the system prompt and scrolls only the first time", () => {
    const state = createState(CID);
    const messages = [msg("s", null, "system"), msg("u1", "s", "user"), msg("a1", "u1", "assistant")];
    const first = apply(state, snapshot(messages));
    assert.deepEqual(first, { redraw: "all", scroll: "always", busy: false });
    assert.equal(state.loaded, true);
    assert.deepEqual(ids(state), ["u1", "a1"]);
    assert.equal(state.conversation.title, "New Chat");
    const again = apply(state, snapshot(messages));
    assert.deepEqual(again, { redraw: "all", busy: false });
  });

  test("a snapshot of another conversation is ignored", () => {
    const state = createState(CID);
    const change = apply(state, { type: "snapshot", conversation: { id: "other", messages: [] } });
    assert.deepEqual(change, {});
    assert.equal(state.loaded, false);
    assert.deepEqual(apply(state, { type: "snapshot", conversation: null }), {});
  });

  test("an answer still streaming is revealed and makes the page busy", () => {
    const state = loaded([
      msg("u1", null, "user"),
      msg("a1", "u1", "assistant"),
      msg("a2", "u1", "assistant", { content: "part", is_generating: true }),
      msg("a3", "u1", "assistant"),
    ]);
    assert.equal(state.generatingId, "a2");
    assert.equal(state.busy, true);
    assert.deepEqual(ids(state), ["u1", "a2"]);
  });

  test("the conversation's own flag makes the page busy too", () => {
    const state = loaded([msg("u1", null, "user")], { is_generating: true });
    assert.equal(state.busy, true);
    assert.equal(state.generatingId, null);
  });

  test("a send still on its way keeps the page busy across a snapshot", () => {
    const state = loaded([]);
    beginSend(state, "hello");
    const change = apply(state, snapshot([]));
    assert.equal(change.busy, true);
    assert.equal(state.pendingSend, "hello");
  });

  test("the branch chosen at each fork survives a new snapshot", () => {
    const messages = [
      msg("u1", null, "user"),
      msg("a1", "u1", "assistant"),
      msg("a2", "u1", "assistant"),
    ];
    const state = loaded(messages);
    assert.deepEqual(ids(state), ["u1", "a2"]);
    assert.equal(chooseBranch(state, "a1"), true);
    apply(state, snapshot(messages));
    assert.deepEqual(ids(state), ["u1", "a1"]);
  });
});
