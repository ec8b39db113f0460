// The state of one open conversation and the websocket protocol of docs/chat-protocol.md as a
// reducer: `apply(state, event)` folds a server event into the message tree and says what the
// page must redraw. Pure data: no DOM, no network, no globals, so node's test runner covers it
// (tests/js/conversation.test.mjs). Imports tree.js only; the view modules read its state.
//
// NOTE: `apply` updates `state` in place instead of copying it: a long conversation holds
// thousands of messages and tokens arrive many times a second. Nothing else writes the tree.

import { MessageTree } from "./tree.js";

export const GENERIC_ERROR = "Something went wrong while writing the answer.";
const RUNNING = new Set(["queued", "generating"]);

/** The state of conversation `conversationId` before its snapshot (null: a new chat). */
export function createState(conversationId = null) {
  return {
    conversationId,
    conversation: null, // the snapshot's Conversation, without its messages
    tree: new MessageTree(),
    generatingId: null, // the answer being written, if the page knows of one
    busy: false, // an answer runs or a request is on its way: no second send
    pendingSend: null, // text sent but not yet stored as a user message
    looseError: null, // an error not attached to any stored message
    loaded: false, // the first snapshot arrived
  };
}

/**
 * Applies one server event to `state` and returns what changed, for the view:
 * - `redraw`: "all" (title, intro and thread), "thread", "message" or "body" (of `id`),
 *   "title", or absent;
 * - `busy`: the new busy flag, present when the event decides it;
 * - `restore`: text that never became a message, to give back to the composer;
 * - `scroll`: "always" or "stick" (only when the reader was at the bottom);
 * - `bump`: the conversation was updated (final answer); `title`: {id, title} for the list.
 */
export function apply(state, event) {
  switch (event?.type) {
    case "snapshot":
      return onSnapshot(state, event.conversation);
    case "message":
      return onMessage(state, event.message);
    case "status":
      return onStatus(state, event.message_id, event.status);
    case "token":
      return onToken(state, event.message_id, event.token, event.offset);
    case "final":
      return onFinal(state, event.message);
    case "tool_call":
      return onToolCall(state, event.message_id, event.call);
    case "tool_calls":
      return onToolCalls(state, event.message_id, event.tool_calls);
    case "title":
      return onTitle(state, event.conversation_id, event.title);
    case "error":
      return onError(state, event.message, event.message_id);
    default:
      return {};
  }
}

/**
 * The text after a token at `offset` (UTF-16 units, as JS strings count): a token already
 * shown is skipped, one that overlaps the end replaces it (a resync after a reconnect resends
 * the whole text at offset 0). Without an offset the token is appended.
 */
export function mergeToken(content, token, offset) {
  const text = content || "";
  if (typeof offset !== "number") return text + token;
  if (offset + token.length <= text.length) return text;
  return text.slice(0, Math.min(offset, text.length)) + token;
}

function setBusy(state, change, busy) {
  state.busy = busy;
  change.busy = busy;
  return change;
}

/** The whole conversation (on connect and after every reconnect); the branch choices stay. */
function onSnapshot(state, conversation) {
  if (!conversation || conversation.id !== state.conversationId) return {};
  const chosen = state.tree.chosen;
  state.tree = new MessageTree(conversation.messages || []);
  state.tree.chosen = chosen;
  state.conversation = conversation;
  state.generatingId = null;
  for (const message of state.tree.byId.values()) {
    if (message.is_generating) state.generatingId = message.id;
  }
  if (state.generatingId) state.tree.reveal(state.tree.get(state.generatingId));
  const first = !state.loaded;
  state.loaded = true;
  const change = { redraw: "all" };
  if (first) change.scroll = "always";
  // NOTE: a send queued before this snapshot is still on its way: stay busy until it lands.
  const waiting = state.pendingSend !== null;
  return setBusy(state, change, Boolean(state.generatingId || conversation.is_generating || waiting));
}

function onMessage(state, message) {
  if (!message) return {};
  const stored = state.tree.add(message);
  state.tree.reveal(stored);
  const change = { redraw: "thread", scroll: message.role === "user" ? "always" : "stick" };
  if (message.role === "user") {
    state.pendingSend = null;
    state.looseError = null;
  }
  if (message.role === "assistant" && message.is_generating) {
    state.generatingId = message.id;
    state.looseError = null;
    setBusy(state, change, true);
  }
  return change;
}

function onStatus(state, id, status) {
  const message = state.tree.get(id);
  const change = message ? { redraw: "message", id } : {};
  if (RUNNING.has(status)) {
    state.generatingId = id;
    if (message) message.is_generating = true;
    return setBusy(state, change, true);
  }
  if (message) message.is_generating = false;
  if (state.generatingId === id) {
    state.generatingId = null;
    setBusy(state, change, false);
  }
  return change;
}

function onToken(state, id, token, offset) {
  const message = state.tree.get(id);
  if (!message) return {};
  message.content = mergeToken(message.content, token, offset);
  const change = { redraw: "body", id };
  if (!message.is_generating) {
    message.is_generating = true;
    state.generatingId = id;
    setBusy(state, change, true);
  }
  return change;
}

/** The stored answer: its text replaces the streamed one. */
function onFinal(state, message) {
  if (!message) return {};
  const stored = state.tree.add({ ...message, is_generating: false });
  delete stored.running_tools; // a call cut short by Stop is not running any more
  const change = { redraw: "thread", scroll: "stick", bump: Boolean(state.conversation) };
  if (state.generatingId === stored.id) {
    state.generatingId = null;
    setBusy(state, change, false);
  }
  return change;
}

/** A tool call that started: shown as running ("Calling `name`…") until its record comes. */
function onToolCall(state, id, call) {
  const message = state.tree.get(id);
  if (!message || !call) return {};
  message.running_tools = [...(message.running_tools || []), call];
  return { redraw: "message", id, scroll: "stick" };
}

/** The calls an answer made so far, with their results (replaces the running ones). */
function onToolCalls(state, id, toolCalls) {
  const message = state.tree.get(id);
  if (!message) return {};
  message.tool_calls = toolCalls || [];
  const done = new Set(message.tool_calls.map((call) => call.id));
  message.running_tools = (message.running_tools || []).filter((call) => !done.has(call.id));
  return { redraw: "message", id };
}

/** A title for any of the user's conversations (the list shows it even when it is not open). */
function onTitle(state, conversationId, title) {
  const change = { title: { id: conversationId, title } };
  if (state.conversation && conversationId === state.conversationId) {
    state.conversation.title = title;
    change.redraw = "title";
  }
  return change;
}

function onError(state, text, messageId) {
  const readable = text || GENERIC_ERROR;
  const message = messageId ? state.tree.get(messageId) : null;
  if (message) {
    message.error = readable;
    message.is_generating = false;
    state.looseError = null;
  } else {
    state.looseError = readable;
  }
  const change = { redraw: "thread", scroll: "always", restore: takePending(state) };
  // A refused request (no message id) while another answer runs leaves that answer running.
  if (!state.generatingId || state.generatingId === messageId) {
    state.generatingId = null;
    setBusy(state, change, false);
  }
  return change;
}

// --- what the page's own actions read and change ----------------------------------------------

/** The text of a send that never became a stored message (then forgotten), or null. */
export function takePending(state) {
  const text = state.pendingSend;
  state.pendingSend = null;
  return text;
}

/** The displayed branch without the system prompt. */
export function visiblePath(state) {
  return state.tree.path().filter((m) => m.role !== "system");
}

/** Where a new user message goes: under the displayed leaf, or beside an unanswered one. */
export function sendParentId(state) {
  const leaf = visiblePath(state).at(-1) || null;
  if (!leaf) return null;
  // A user message whose answer never came: the new one replaces it as a sibling.
  return leaf.role === "user" ? (leaf.parent_id ?? null) : leaf.id;
}

/** A send is on its way: its text comes back to the composer if it is refused. */
export function beginSend(state, text) {
  state.pendingSend = text;
  state.looseError = null;
}

/** Before a new answer for `messageId`: its error and any loose error go. */
export function clearErrors(state, messageId) {
  state.looseError = null;
  const message = state.tree.get(messageId);
  if (message) message.error = null;
}

/** Retry after an error: the user message of the failed turn (or of the last turn), or null. */
export function retryUserId(state, assistantId) {
  let userId = null;
  if (assistantId) {
    userId = state.tree.get(assistantId)?.parent_id ?? null;
  } else {
    const lastUser = visiblePath(state).findLast((m) => m.role === "user");
    userId = lastUser ? lastUser.id : null;
  }
  return userId && state.tree.get(userId)?.role === "user" ? userId : null;
}

/** Shows the branch of message `id` at its fork; false when the message is unknown. */
export function chooseBranch(state, id) {
  const target = state.tree.get(id);
  if (!target) return false;
  state.tree.choose(target);
  return true;
}

/** The text of the last answer on the displayed branch ("" when there is none). */
export function lastAnswerText(state) {
  const answer = visiblePath(state).findLast((m) => m.role === "assistant" && m.content);
  return answer ? answer.content : "";
}
