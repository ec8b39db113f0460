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

/** One closed block per tool call: "Tool: name", then its arguments and its result. */
export function toolBlocks(toolCalls) {
  return (toolCalls || []).map((call) => {
    const box = details("msg-tool", `Tool: ${call.name || "?"}`);
    box.dataset.tool = call.name || "";
    box.append(
      pre("msg-tool-arguments", prettyArguments(call.arguments)),
      pre("msg-tool-result", String(call.result ?? "")),
    );
    return box;
  });
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
