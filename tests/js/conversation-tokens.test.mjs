// The conversation reducer (static/chatui/conversation.js) against the websocket protocol of
// docs/chat-protocol.md: tokens by offset (mergeToken, token events) and a whole send, event by event.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  apply,
  beginSend,
  chooseBranch,
  createState,
  mergeToken,
} from "../../static/chatui/conversation.js";

import { CID, msg, snapshot, token, message, final, loaded, ids, answerEvents } from "./conversation-factories.mjs";

// --- tokens ------------------------------------------------------------------------------------

describe("mergeToken", () => {
  test("appends at the end", () => {
    assert.equal(mergeToken("Hel", "lo", 3), "Hello");
    assert.equal(mergeToken("", "Hi", 0), "Hi");
    assert.equal(mergeToken(null, "Hi", 0), "Hi");
  });

  test("skips a token already shown", () => {
    assert.equal(mergeToken("Hello", "Hel", 0), "Hello");
    assert.equal(mergeToken("Hello", "lo", 3), "Hello");
    assert.equal(mergeToken("Hello", "", 5), "Hello");
  });

  test("a token that overlaps the end replaces it", () => {
    assert.equal(mergeToken("Hello", "lo world", 3), "Hello world");
    assert.equal(mergeToken("Hello", "Hello there", 0), "Hello there");
    assert.equal(mergeToken("Hel!", "lo", 3), "Hello");
  });

  test("without an offset the token is appended", () => {
    assert.equal(mergeToken("Hel", "lo"), "Hello");
    assert.equal(mergeToken("Hel", "lo", undefined), "Hello");
    assert.equal(mergeToken("Hel", "lo", null), "Hello");
  });

  test("offsets count UTF-16 units, as JavaScript strings do", () => {
    const text = mergeToken("😀", "a", 2);
    assert.equal(text, "😀a");
    assert.equal(mergeToken(text, "😀a", 0), "😀a");
    assert.equal(mergeToken(text, "ab", 2), "😀ab");
  });

  test("an offset past the end cannot leave a hole", () => {
    assert.equal(mergeToken("ab", "cd", 5), "abcd");
  });

  test("any replay of the token stream, in any split, rebuilds the text once", () => {
    const text = "The quick brown fox jumps over the lazy dog.";
    for (let size = 1; size <= 7; size += 1) {
      const chunks = [];
      for (let at = 0; at < text.length; at += size) chunks.push([text.slice(at, at + size), at]);
      let shown = "";
      for (const [chunk, offset] of chunks) shown = mergeToken(shown, chunk, offset);
      // A reconnect replays the first half, then everything again: no duplicates.
      for (const [chunk, offset] of chunks.slice(0, chunks.length / 2)) {
        shown = mergeToken(shown, chunk, offset);
      }
      for (const [chunk, offset] of chunks) shown = mergeToken(shown, chunk, offset);
      assert.equal(shown, text, `chunks of ${size}`);
    }
  });
});

describe("token events", () => {
  test("build the answer and ask for a body repaint only", () => {
    const state = loaded([msg("u1", null, "user")]);
    apply(state, message(msg("a1", "u1", "assistant", { content: "", is_generating: true })));
    assert.deepEqual(apply(state, token("a1", "Hel", 0)), { redraw: "body", id: "a1" });
    apply(state, token("a1", "lo", 3));
    assert.equal(state.tree.get("a1").content, "Hello");
  });

  test("a token for an unknown message changes nothing", () => {
    const state = loaded([]);
    assert.deepEqual(apply(state, token("nope", "x", 0)), {});
    assert.equal(state.tree.size, 0);
  });

  test("a token for an answer the page thought finished makes it generating again", () => {
    const state = loaded([msg("u1", null, "user"), msg("a1", "u1", "assistant", { content: "" })]);
    const change = apply(state, token("a1", "x", 0));
    assert.deepEqual(change, { redraw: "body", id: "a1", busy: true });
    assert.equal(state.generatingId, "a1");
    assert.equal(state.tree.get("a1").is_generating, true);
  });
});

// --- a whole send ------------------------------------------------------------------------------

describe("a send, event by event", () => {
  test("the protocol's order builds the turn and ends idle", () => {
    const state = loaded([]);
    beginSend(state, "text u1");
    const changes = answerEvents("u1", "a1", ["Hel", "lo", " there"]).map((e) => apply(state, e));
    assert.equal(state.pendingSend, null);
    assert.deepEqual(ids(state), ["u1", "a1"]);
    const answer = state.tree.get("a1");
    assert.equal(answer.content, "Hello there");
    assert.equal(answer.is_generating, false);
    assert.equal(state.generatingId, null);
    assert.equal(state.busy, false);
    assert.deepEqual(changes[0], { redraw: "thread", scroll: "always" });
    assert.deepEqual(changes[1], { redraw: "thread", scroll: "stick", busy: true });
    assert.deepEqual(changes[2], { redraw: "message", id: "a1", busy: true });
    assert.deepEqual(changes.at(-2), { redraw: "thread", scroll: "stick", bump: true, busy: false });
    assert.deepEqual(changes.at(-1), { redraw: "message", id: "a1" });
  });

  test("the final message's text replaces the streamed one", () => {
    const state = loaded([msg("u1", null, "user")]);
    apply(state, message(msg("a1", "u1", "assistant", { content: "", is_generating: true })));
    apply(state, token("a1", "Hello STOP", 0));
    apply(state, final(msg("a1", "u1", "assistant", { content: "Hello", finish_reason: "stop" })));
    assert.equal(state.tree.get("a1").content, "Hello");
    assert.equal(state.tree.get("a1").finish_reason, "stop");
  });

  test("a final before any snapshot does not bump the list", () => {
    const state = createState(CID);
    const change = apply(state, final(msg("a1", null, "assistant")));
    assert.equal(change.bump, false);
  });

  test("a user message clears the pending send and a loose error", () => {
    const state = loaded([]);
    state.looseError = "refused";
    beginSend(state, "hi");
    apply(state, message(msg("u1", null, "user")));
    assert.equal(state.pendingSend, null);
    assert.equal(state.looseError, null);
  });

  test("a new message is revealed even when another branch was chosen", () => {
    const state = loaded([msg("u1", null, "user"), msg("a1", "u1", "assistant"), msg("a2", "u1", "assistant")]);
    chooseBranch(state, "a1");
    apply(state, message(msg("a3", "u1", "assistant", { content: "", is_generating: true })));
    assert.deepEqual(ids(state), ["u1", "a3"]);
  });

  test("empty events are ignored", () => {
    const state = loaded([]);
    assert.deepEqual(apply(state, message(null)), {});
    assert.deepEqual(apply(state, final(null)), {});
    assert.deepEqual(apply(state, { type: "unknown" }), {});
    assert.deepEqual(apply(state, null), {});
  });
});
