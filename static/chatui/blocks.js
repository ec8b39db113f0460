// Collapsible blocks around an answer: the tools it called (message.tool_calls: name,
// arguments, result) and its reasoning (the leading block the server stores every model's
// reasoning as), shown closed as chat-ui shows them, with how long the reasoning took. Text
// only (textContent): nothing a model or a tool writes here becomes markup.

import { forgetRendered, renderInto } from "./markdown.js";

// The stored form (chatui/reasoning.py): <think seconds="2.5">...</think>, then the answer.
const THINK = /^\s*<think(?: seconds="([\d.]+)")?>([\s\S]*?)(<\/think>|$)/;

/**
 * {reasoning, answer, thinking, seconds}: `thinking` while the reasoning is still being
 * written; `seconds` how long it took, once the answer is stored.
 */
export function splitReasoning(text) {
  const match = THINK.exec(text || "");
  if (!match) return { reasoning: null, answer: text || "", thinking: false, seconds: null };
  return {
    reasoning: match[2].trim(),
    answer: text.slice(match[0].length).replace(/^\s+/, ""),
    thinking: match[3] === "",
    seconds: match[1] ? Number(match[1]) : null,
  };
}

/** The block's title: "Thinking" while it streams, then how long it took. */
export function reasoningTitle({ thinking, seconds }) {
  if (thinking) return "Thinking";
  return seconds === null ? "Reasoning" : `Reasoned for ${seconds.toFixed(1)} s`;
}

function details(className, title, open = false) {
  const box = document.createElement("details");
  box.className = className;
  box.open = open;
  const summary = document.createElement("summary");
  summary.textContent = title;
  box.append(summary);
  return box;
}

function pre(className, text) {
  const node = document.createElement("pre");
  node.className = className;
  node.textContent = text;
  return node;
}

function prettyArguments(raw) {
  try {
    return JSON.stringify(JSON.parse(raw), null, 2);
  } catch {
    return String(raw ?? "");
  }
}

/** A labelled part of a tool block: "Arguments", "Result" or "Error", then its text. */
function part(className, label, text) {
  const box = document.createElement("div");
  box.className = `msg-tool-part ${className}-part`;
  const heading = document.createElement("span");
  heading.className = "msg-tool-label";
  heading.textContent = label;
  box.append(heading, pre(className, text));
  return box;
}

function seconds(ms) {
  return ms == null ? "" : ` · ${(ms / 1000).toFixed(ms < 10000 ? 1 : 0)} s`;
}

/**
 * One closed block per tool call: "Tool: name" (and its time), then its labelled arguments
 * and result (or error); calls still running show as open "Calling `name`…" blocks.
 */
export function toolBlocks(toolCalls, running = []) {
  const done = (toolCalls || []).map((call) => {
    const box = details("msg-tool", `Tool: ${call.name || "?"}`);
    box.dataset.tool = call.name || "";
    if (call.error) box.classList.add("msg-tool-failed");
    const time = document.createElement("span");
    time.className = "msg-tool-time";
    time.textContent = seconds(call.duration_ms);
    box.querySelector("summary").append(time);
    box.append(
      part("msg-tool-arguments", "Arguments", prettyArguments(call.arguments)),
      call.error
        ? part("msg-tool-error", "Error", String(call.error))
        : part("msg-tool-result", "Result", String(call.result ?? "")),
    );
    return box;
  });
  const busy = (running || []).map((call) => {
    const box = document.createElement("div");
    box.className = "msg-tool msg-tool-running";
    box.setAttribute("role", "status");
    box.dataset.tool = call.name || "";
    const code = document.createElement("code");
    code.textContent = call.name || "?";
    box.append("Calling ", code, "…");
    return box;
  });
  return [...done, ...busy];
}

/**
 * Fills an answer's body: a closed "Reasoning" block when the text opens with one, then the
 * answer as Markdown (rendered incrementally, as the plain body is).
 */
export function renderAnswer(body, text) {
  const parts = splitReasoning(text);
  const { reasoning, answer, thinking } = parts;
  if (reasoning === null) {
    if (body.querySelector(":scope > .msg-reasoning")) {
      body.replaceChildren();
      forgetRendered(body);
    }
    renderInto(body, text);
    return;
  }
  let box = body.querySelector(":scope > .msg-reasoning");
  let answerNode = body.querySelector(":scope > .msg-answer");
  if (!box || !answerNode) {
    forgetRendered(body);
    box = details("msg-reasoning", "Reasoning");
    box.append(pre("msg-reasoning-text", ""));
    answerNode = document.createElement("div");
    answerNode.className = "msg-answer";
    body.replaceChildren(box, answerNode);
  }
  box.classList.toggle("is-thinking", thinking);
  box.querySelector("summary").textContent = reasoningTitle(parts);
  box.querySelector(".msg-reasoning-text").textContent = reasoning;
  renderInto(answerNode, answer);
}
