// The read-only page of a shared snapshot (/r/<id>): the branch that was on the sharer's screen
// (`leaf_id`; the newest branch of older snapshots), rendered with the chat page's Markdown
// pipeline, with `< 1/2 >` wherever the snapshot holds other versions. No socket; one API call,
// for model names.

import { getJSON } from "./api.js";
import { renderAnswer, toolBlocks } from "./blocks.js";
import { messageFiles } from "./files.js";
import { installCodeCopy } from "./markdown.js";
import { branchSwitcher } from "./message-view.js";
import { MessageTree } from "./tree.js";

function main() {
  const node = document.getElementById("shared-data");
  const container = document.getElementById("messages");
  let conversation = {};
  try {
    conversation = JSON.parse(node.textContent) || {};
    if (typeof conversation === "string") conversation = JSON.parse(conversation);
  } catch {
    conversation = {};
  }
  const tree = new MessageTree(conversation.messages || []);
  const leaf = conversation.leaf_id ? tree.get(conversation.leaf_id) : null;
  if (leaf) tree.reveal(leaf);
  container.addEventListener("click", (event) => {
    const button = event.target.closest(".branch-prev, .branch-next");
    const target = button && !button.disabled ? tree.get(button.dataset.target) : null;
    if (!target) return;
    tree.choose(target);
    render(tree, container);
    showModelNames(container);
  });
  render(tree, container);
  installCodeCopy(container);
  showModelNames(container);
}

/** The displayed branch of `tree`, each message with its versions' arrows. */
function render(tree, container) {
  const articles = tree
    .path()
    .filter((m) => m.role !== "system")
    .map((message) => {
      const article = document.createElement("article");
      article.className = `msg msg-${message.role}`;
      article.dataset.id = message.id;
      const main = document.createElement("div");
      main.className = "msg-main";
      if (message.role === "user") {
        const files = messageFiles(message.files);
        if (files) main.append(files);
        const bubble = document.createElement("div");
        bubble.className = "msg-bubble";
        bubble.textContent = message.content;
        main.append(bubble, versions(message, tree));
      } else {
        const meta = document.createElement("div");
        meta.className = "msg-meta";
        const label = document.createElement("span");
        label.className = "msg-model";
        label.dataset.model = message.model || "";
        label.textContent = message.model || "";
        meta.append(label);
        const body = document.createElement("div");
        body.className = "msg-body markdown";
        renderAnswer(body, message.content || "");
        main.append(meta, ...toolBlocks(message.tool_calls), body, versions(message, tree));
      }
      article.append(main);
      return article;
    });
  container.replaceChildren(...articles);
}

/** The row under a message holding its `< 1/2 >` (empty when it has no other version). */
function versions(message, tree) {
  const row = document.createElement("div");
  row.className = "msg-actions";
  row.append(...branchSwitcher(message, tree));
  return row;
}

/** Replaces model ids with their display names (ids stay where the list is unavailable). */
async function showModelNames(container) {
  let models = [];
  try {
    models = (await getJSON("/api/models")).models || [];
  } catch {
    return;
  }
  for (const label of container.querySelectorAll(".msg-model[data-model]")) {
    const model = models.find((m) => m.id === label.dataset.model);
    if (model && model.displayName) label.textContent = model.displayName;
  }
}

main();
