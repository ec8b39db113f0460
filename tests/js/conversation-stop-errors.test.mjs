// The conversation reducer (static/chatui/conversation.js) against the websocket protocol of
// docs/chat-protocol.md: stop and errors.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  GENERIC_ERROR,
  apply,
  beginSend,
  clearErrors,
  retryUserId,
} from "../../static/chatui/conversation.js";

import { msg, token, status, message, final, loaded } from "./conversation-factories.mjs";

// --- stop --------------------------------------------------------------------------------------

describe("stop", () => {
  test("a stopped answer keeps its partial text and the page goes idle", () => {
    const state = loaded([msg("u1", null, "user")]);
    apply(state, message(msg("a1", "u1", "assistant", { content: "", is_generating: true })));
    apply(state, status("a1", "generating"));
    apply(state, token("a1", "Partial", 0));
    const stopped = msg("a1", "u1", "assistant", { content: "Partial", finish_reason: "stop" });
    apply(state, final(stopped));
    const change = apply(state, status("a1", "stopped"));
    assert.deepEqual(change, { redraw: "message", id: "a1" });
    assert.equal(state.tree.get("a1").content, "Partial");
    assert.equal(state.busy, false);
  });

  test("the end of another answer leaves the running one busy", () => {
    const state = loaded([msg("u1", null, "user"), msg("a0", "u1", "assistant")]);
    apply(state, status("a1", "generating"));
    const change = apply(state, status("a0", "done"));
    assert.equal(change.busy, undefined);
    assert.equal(state.busy, true);
    assert.equal(state.generatingId, "a1");
  });

  test("a status for an unknown message still tracks the running answer", () => {
    const state = loaded([]);
    assert.deepEqual(apply(state, status("x", "queued")), { busy: true });
    assert.deepEqual(apply(state, status("x", "done")), { busy: false });
  });
});

// --- errors ------------------------------------------------------------------------------------

describe("errors", () => {
  test("an error on an answer marks it and ends the answer", () => {
    const state = loaded([msg("u1", null, "user")]);
    apply(state, message(msg("a1", "u1", "assistant", { content: "", is_generating: true })));
    const change = apply(state, { type: "error", message: "The model failed.", message_id: "a1" });
    assert.deepEqual(change, { redraw: "thread", scroll: "always", restore: null, busy: false });
    const answer = state.tree.get("a1");
    assert.equal(answer.error, "The model failed.");
    assert.equal(answer.is_generating, false);
    assert.equal(state.looseError, null);
  });

  test("a refused request gives the text back and shows a loose error", () => {
    const state = loaded([]);
    beginSend(state, "too much");
    const change = apply(state, { type: "error", message: "Usage limit.", message_id: null });
    assert.equal(change.restore, "too much");
    assert.equal(change.busy, false);
    assert.equal(state.pendingSend, null);
    assert.equal(state.looseError, "Usage limit.");
  });

  test("a refused request while another answer runs leaves that answer running", () => {
    const state = loaded([msg("u1", null, "user")]);
    apply(state, message(msg("a1", "u1", "assistant", { content: "", is_generating: true })));
    const change = apply(state, { type: "error", message: "Already running.", message_id: null });
    assert.equal(change.busy, undefined);
    assert.equal(state.busy, true);
    assert.equal(state.generatingId, "a1");
    assert.equal(state.looseError, "Already running.");
  });

  test("an error without words reads as the generic one", () => {
    const state = loaded([]);
    apply(state, { type: "error", message: "", message_id: null });
    assert.equal(state.looseError, GENERIC_ERROR);
  });

  test("the next answer clears the loose error", () => {
    const state = loaded([msg("u1", null, "user")]);
    apply(state, { type: "error", message: "x", message_id: null });
    apply(state, message(msg("a1", "u1", "assistant", { content: "", is_generating: true })));
    assert.equal(state.looseError, null);
  });

  test("retry regenerates under the failed answer's user message", () => {
    const state = loaded([msg("u1", null, "user"), msg("a1", "u1", "assistant", { error: "x" })]);
    assert.equal(retryUserId(state, "a1"), "u1");
    clearErrors(state, "a1");
    assert.equal(state.tree.get("a1").error, null);
  });

  test("retry of a loose error picks the last user message of the branch", () => {
    const state = loaded([
      msg("u1", null, "user"),
      msg("a1", "u1", "assistant"),
      msg("u2", "a1", "user"),
    ]);
    assert.equal(retryUserId(state, null), "u2");
    assert.equal(retryUserId(loaded([]), null), null);
    assert.equal(retryUserId(state, "unknown"), null);
  });
});
