// Keyboard shortcuts of the chat page (the ones ChatGPT and chat-ui users expect), and the
// dialog that lists them. Knows nothing of the chat itself: app.js passes the actions in.

export const COPIED_LAST_ANSWER = "Copied the last answer.";
export const NOTHING_TO_COPY = "There is no answer to copy yet.";

const IS_MAC = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent || "");
const MOD = IS_MAC ? "⌘" : "Ctrl";

/** The shortcuts as the dialog lists them: [keys, what it does, id]. */
export const SHORTCUTS = [
  [[MOD, "Shift", "O"], "New chat", "new-chat"],
  [["Shift", "Esc"], "Focus the message box", "focus-input"],
  [["Esc"], "Stop the answer being written", "stop"],
  [[MOD, "Shift", "C"], "Copy the last answer", "copy-last"],
  [[MOD, "/"], "Show keyboard shortcuts", "help"],
];

function which(event) {
  const mod = event.ctrlKey || event.metaKey;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  if (mod && event.shiftKey && key === "o") return "new-chat";
  if (mod && event.shiftKey && key === "c") return "copy-last";
  if (mod && !event.shiftKey && key === "/") return "help";
  if (key === "Escape" && event.shiftKey && !mod) return "focus-input";
  if (key === "Escape" && !event.shiftKey && !mod) return "stop";
  return null;
}

/**
 * @param {object} actions  {newChat(), focusInput(), stop() -> bool, copyLast() -> Promise}
 */
export function installShortcuts(actions) {
  const dialog = document.getElementById("shortcuts-dialog");
  const list = document.getElementById("shortcuts-list");
  list.replaceChildren(
    ...SHORTCUTS.map(([keys, label, id]) => {
      const row = document.createElement("div");
      row.className = "shortcut";
      row.dataset.shortcut = id;
      const term = document.createElement("dt");
      for (const key of keys) {
        const kbd = document.createElement("kbd");
        kbd.textContent = key;
        term.append(kbd);
      }
      const description = document.createElement("dd");
      description.textContent = label;
      row.append(term, description);
      return row;
    }),
  );
  const showHelp = () => {
    if (!dialog.open) dialog.showModal();
  };
  for (const button of document.querySelectorAll("[data-open-shortcuts]")) {
    button.addEventListener("click", () => {
      button.closest("dialog")?.close();
      showHelp();
    });
  }
  document.addEventListener("keydown", (event) => {
    const action = which(event);
    if (!action || event.isComposing) return;
    // A dialog that is open keeps Escape for itself.
    if (action === "stop" && document.querySelector("dialog[open]")) return;
    if (action === "stop") {
      if (actions.stop()) event.preventDefault();
      return;
    }
    event.preventDefault();
    if (action === "new-chat") actions.newChat();
    else if (action === "focus-input") actions.focusInput();
    else if (action === "copy-last") actions.copyLast();
    else if (action === "help") showHelp();
  });
}
