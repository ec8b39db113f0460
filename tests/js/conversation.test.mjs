// The conversation reducer (static/chatui/conversation.js) against the websocket protocol of
// docs/chat-protocol.md: snapshots, tokens by offset, stop, errors, branches, tool calls, resync.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  GENERIC_ERROR,
  apply,
  beginSend,
  chooseBranch,
  clearErrors,
  createState,
  lastAnswerText,
  mergeToken,
  retryUserId,
  sendParentId,
  takePending,
  visiblePath,
} from "../../static/chatui/conversation.js";

const CID = "c1";

// --- factories ---------------------------------------------------------------------------------

function msg(id, parent_id, role, extra = {}) {
  return {
    id,
    parent_id,
    role,
    content: role === "assistant" ? `answer ${id}` : `text ${id}`,
    model: "m",
    error: null,
    is_generating: false,
    tool_calls: [],
    ...extra,
  };
}

function conversation(messages = [], extra = {}) {
  return { id: CID, title: "New Chat", model: "m", is_generating: false, messages, ...extra };
}

const snapshot = (messages, extra) => ({
  type: "snapshot",
  conversation: conversation(messages, extra),
});
const token = (id, text, offset) => ({ type: "token", message_id: id, token: text, offset });
const status = (id, value) => ({ type: "status", message_id: id, status: value });
const message = (m) => ({ type: "message", message: m });
const final = (m) => ({ type: "final", message: m });

/** A state that has read a snapshot of `messages`. */
function loaded(messages = [], extra) {
  const state = createState(CID);
  apply(state, snapshot(messages, extra));
  return state;
}

const ids = (state) => visiblePath(state).map((m) => m.id);

/** The events of one `send`, as the protocol orders them, with the answer in `chunks`. */
function answerEvents(userId, answerId, chunks, parentId = null) {
  const events = [
    message(msg(userId, parentId, "user")),
    message(msg(answerId, userId, "assistant", { content: "", is_generating: true })),
    status(answerId, "queued"),
    status(answerId, "generating"),
  ];
  let offset = 0;
  for (const chunk of chunks) {
    events.push(token(answerId, chunk, offset));
    offset += chunk.length;
  }
  events.push(final(msg(answerId, userId, "assistant", { content: chunks.join("") })));
  events.push(status(answerId, "done"));
  return events;
}

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
