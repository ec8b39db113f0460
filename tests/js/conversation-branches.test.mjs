// The conversation reducer (static/chatui/conversation.js) against the websocket protocol of
// docs/chat-protocol.md: branches, tool calls and titles.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  apply,
  chooseBranch,
  lastAnswerText,
  sendParentId,
} from "../../static/chatui/conversation.js";

import { CID, msg, conversation, token, message, final, loaded, ids, answerEvents } from "./conversation-factories.mjs";

// --- branches ----------------------------------------------------------------------------------

describe("branches", () => {
  const forked = () =>
    loaded([
      msg("s", null, "system"),
      msg("u1", "s", "user"),
      msg("a1", "u1", "assistant"),
      msg("u2", "a1", "user"),
      msg("a2", "u2", "assistant"),
      msg("u1b", "s", "user"),
      msg("a1b", "u1b", "assistant"),
    ]);

  test("the newest branch shows unless one is chosen", () => {
    const state = forked();
    assert.deepEqual(ids(state), ["u1b", "a1b"]);
    assert.equal(chooseBranch(state, "u1"), true);
    assert.deepEqual(ids(state), ["u1", "a1", "u2", "a2"]);
    assert.equal(chooseBranch(state, "missing"), false);
  });

  test("a new message goes under the displayed leaf", () => {
    const state = forked();
    assert.equal(sendParentId(state), "a1b");
    chooseBranch(state, "u1");
    assert.equal(sendParentId(state), "a2");
    assert.equal(sendParentId(loaded([])), null);
  });

  test("an unanswered user message is replaced by a sibling", () => {
    const state = loaded([msg("s", null, "system"), msg("u1", "s", "user")]);
    assert.equal(sendParentId(state), "s");
    assert.equal(sendParentId(loaded([msg("u1", null, "user")])), null);
  });

  test("an edit arrives as a sibling and becomes the displayed branch", () => {
    const state = forked();
    chooseBranch(state, "u1");
    for (const event of answerEvents("u1c", "a1c", ["edited"], "s")) apply(state, event);
    assert.deepEqual(ids(state), ["u1c", "a1c"]);
    assert.deepEqual(
      state.tree.siblings(state.tree.get("u1c")).map((m) => m.id),
      ["u1", "u1b", "u1c"],
    );
  });

  test("the last answer's text is read from the displayed branch", () => {
    const state = forked();
    assert.equal(lastAnswerText(state), "answer a1b");
    chooseBranch(state, "u1");
    assert.equal(lastAnswerText(state), "answer a2");
    assert.equal(lastAnswerText(loaded([])), "");
  });
});

// --- tool calls --------------------------------------------------------------------------------

describe("tool calls", () => {
  test("arrive before the text and stay with the final message", () => {
    const state = loaded([msg("u1", null, "user")]);
    apply(state, message(msg("a1", "u1", "assistant", { content: "", is_generating: true })));
    const calls = [{ id: "t1", name: "calculator", arguments: '{"x": 1}', result: "1" }];
    const change = apply(state, { type: "tool_calls", message_id: "a1", tool_calls: calls });
    assert.deepEqual(change, { redraw: "message", id: "a1" });
    assert.deepEqual(state.tree.get("a1").tool_calls, calls);
    apply(state, token("a1", "One.", 0));
    apply(state, final(msg("a1", "u1", "assistant", { content: "One.", tool_calls: calls })));
    assert.deepEqual(state.tree.get("a1").tool_calls, calls);
  });

  test("a missing list reads as none; an unknown message is ignored", () => {
    const state = loaded([msg("a1", null, "assistant")]);
    apply(state, { type: "tool_calls", message_id: "a1", tool_calls: null });
    assert.deepEqual(state.tree.get("a1").tool_calls, []);
    assert.deepEqual(apply(state, { type: "tool_calls", message_id: "x", tool_calls: [] }), {});
  });
});

// --- titles ------------------------------------------------------------------------------------

describe("titles", () => {
  test("this conversation's title changes it and the list", () => {
    const state = loaded([]);
    const change = apply(state, { type: "title", conversation_id: CID, title: "Cats" });
    assert.deepEqual(change, { title: { id: CID, title: "Cats" }, redraw: "title" });
    assert.equal(state.conversation.title, "Cats");
  });

  test("another conversation's title goes to the list only", () => {
    const state = loaded([]);
    const change = apply(state, { type: "title", conversation_id: "c2", title: "Dogs" });
    assert.deepEqual(change, { title: { id: "c2", title: "Dogs" } });
    assert.equal(state.conversation.title, "New Chat");
  });
});
