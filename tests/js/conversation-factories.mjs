// Factories for the conversation reducer's tests: messages, conversations, the protocol's
// events (docs/chat-protocol.md) and a state that has read a snapshot. Not a test file itself.

import { apply, createState, visiblePath } from "../../static/chatui/conversation.js";

export const CID = "c1";

export function msg(id, parent_id, role, extra = {}) {
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

export function conversation(messages = [], extra = {}) {
  return { id: CID, title: "New Chat", model: "m", is_generating: false, messages, ...extra };
}

export const snapshot = (messages, extra) => ({
  type: "snapshot",
  conversation: conversation(messages, extra),
});
export const token = (id, text, offset) => ({ type: "token", message_id: id, token: text, offset });
export const status = (id, value) => ({ type: "status", message_id: id, status: value });
export const message = (m) => ({ type: "message", message: m });
export const final = (m) => ({ type: "final", message: m });

/** A state that has read a snapshot of `messages`. */
export function loaded(messages = [], extra) {
  const state = createState(CID);
  apply(state, snapshot(messages, extra));
  return state;
}

export const ids = (state) => visiblePath(state).map((m) => m.id);

/** The events of one `send`, as the protocol orders them, with the answer in `chunks`. */
export function answerEvents(userId, answerId, chunks, parentId = null) {
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
