// The message tree of one conversation: which branch is displayed, and the siblings of a message.
// Pure data (no DOM, no network) so conversation.js (the chat page) and shared.js can share it.
// Messages carry `parent_id` (null at the root); children keep their creation order.

const ROOT = "";
const keyOf = (parentId) => parentId ?? ROOT;

/** Messages indexed by id and by parent, plus the branch choice at each fork. */
export class MessageTree {
  constructor(messages = []) {
    this.byId = new Map();
    this.children = new Map();
    // parent key -> chosen child id; a fork without a choice shows its newest child.
    this.chosen = new Map();
    for (const message of messages) this.add(message);
  }

  /** Adds a message, or replaces the stored copy of one already known (keeps its place). */
  add(message) {
    const known = this.byId.get(message.id);
    this.byId.set(message.id, known ? Object.assign(known, message) : { ...message });
    if (known) return this.byId.get(message.id);
    const key = keyOf(message.parent_id);
    if (!this.children.has(key)) this.children.set(key, []);
    this.children.get(key).push(message.id);
    return this.byId.get(message.id);
  }

  get(id) {
    return this.byId.get(id);
  }

  get size() {
    return this.byId.size;
  }

  /** The messages sharing `message`'s parent (itself included), in creation order. */
  siblings(message) {
    const ids = this.children.get(keyOf(message.parent_id)) || [];
    return ids.map((id) => this.byId.get(id));
  }

  /** Shows `message` (and so its branch) at its fork. */
  choose(message) {
    this.chosen.set(keyOf(message.parent_id), message.id);
  }

  /** Makes every fork on the way from the root to `message` lead to it. */
  reveal(message) {
    let node = message;
    while (node) {
      this.choose(node);
      node = node.parent_id ? this.byId.get(node.parent_id) : null;
    }
  }

  childOf(key) {
    const ids = this.children.get(key);
    if (!ids || ids.length === 0) return null;
    const chosen = this.chosen.get(key);
    return this.byId.get(ids.includes(chosen) ? chosen : ids[ids.length - 1]);
  }

  /** The displayed branch, root first. */
  path() {
    const out = [];
    let node = this.childOf(ROOT);
    while (node) {
      out.push(node);
      node = this.childOf(node.id);
    }
    return out;
  }

  /** The last message of the displayed branch (where the next user message goes), or null. */
  leaf() {
    const path = this.path();
    return path.length ? path[path.length - 1] : null;
  }
}
