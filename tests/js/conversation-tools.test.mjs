// The conversation reducer (static/chatui/conversation.js): tool calls as they start
// (`tool_call`), as they end (`tool_calls`), and once the answer is final.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { apply } from "../../static/chatui/conversation.js";

import { final, loaded, message, msg } from "./conversation-factories.mjs";

const started = (id, name) => ({
  type: "tool_call",
  message_id: "a1",
  call: { id, name, arguments: "{}", step: 0 },
});
const record = (id, name) => ({ id, name, arguments: "{}", result: "ok", error: "", step: 0 });

describe("tool calls", () => {
  test("a started call runs until its record arrives, then the final answer keeps it", () => {
    const state = loaded([msg("u1", null, "user")]);
    apply(state, message(msg("a1", "u1", "assistant", { content: "", is_generating: true })));
    const change = apply(state, started("c1", "get_current_time"));
    assert.deepEqual(change, { redraw: "message", id: "a1", scroll: "stick" });
    apply(state, started("c2", "calculator"));
    const answer = state.tree.get("a1");
    assert.deepEqual(answer.running_tools.map((c) => c.name), ["get_current_time", "calculator"]);

    apply(state, { type: "tool_calls", message_id: "a1", tool_calls: [record("c1", "get_current_time")] });
    assert.deepEqual(state.tree.get("a1").running_tools.map((c) => c.id), ["c2"]);
    assert.equal(state.tree.get("a1").tool_calls.length, 1);

    const calls = [record("c1", "get_current_time"), record("c2", "calculator")];
    apply(state, final(msg("a1", "u1", "assistant", { content: "Done", tool_calls: calls })));
    assert.equal(state.tree.get("a1").running_tools, undefined);
    assert.equal(state.tree.get("a1").tool_calls.length, 2);
  });

  test("a call for an unknown message changes nothing", () => {
    const state = loaded([msg("u1", null, "user")]);
    assert.deepEqual(apply(state, started("c1", "x")), {});
  });
});
