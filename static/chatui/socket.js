// One websocket per open conversation, reconnecting with exponential backoff.
// Knows the URL scheme and the close codes, nothing about messages: chat.js interprets them.

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 8000;
// NOTE: 4403 / 4404 mean "not yours" / "gone": retrying cannot help.
const FINAL_CLOSE_CODES = new Set([4403, 4404]);

export const MESSAGE_TOO_BIG = "That message is too large to send (the limit is 1 MiB).";
export const MESSAGE_UNREADABLE = "That message could not be read by the server.";
// The server closes the socket over a message it refused (1009 too big, 1007 not UTF-8): the
// page hears it as a refused request, then the socket reconnects.
const REFUSAL_CLOSE_CODES = new Map([
  [1009, MESSAGE_TOO_BIG],
  [1007, MESSAGE_UNREADABLE],
]);

/** A websocket that reconnects on close and queues sends while it is down. */
export class ConversationSocket {
  constructor(conversationId, { onMessage, onState } = {}) {
    this.conversationId = conversationId;
    this.onMessage = onMessage || (() => {});
    this.onState = onState || (() => {});
    this.queue = [];
    this.attempt = 0;
    this.closed = false;
    this.timer = null;
    this.ws = null;
    this.connect();
  }

  get url() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    return `${scheme}://${location.host}/ws/conversations/${this.conversationId}/`;
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  connect() {
    this.onState(this.attempt === 0 ? "connecting" : "reconnecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (ws !== this.ws) return;
      this.attempt = 0;
      this.onState("open");
      const pending = this.queue;
      this.queue = [];
      for (const payload of pending) ws.send(payload);
    });
    ws.addEventListener("message", (event) => {
      if (ws !== this.ws) return;
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      this.onMessage(data);
    });
    ws.addEventListener("close", (event) => {
      if (ws !== this.ws || this.closed) return;
      if (FINAL_CLOSE_CODES.has(event.code)) {
        this.closed = true;
        this.onState("denied");
        return;
      }
      const refusal = REFUSAL_CLOSE_CODES.get(event.code);
      if (refusal) this.onMessage({ type: "error", message: refusal, message_id: null });
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** this.attempt);
    this.attempt += 1;
    this.onState("reconnecting");
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay * (0.75 + Math.random() * 0.5));
  }

  /** Sends now, or as soon as the socket is (re)connected. */
  send(message) {
    const payload = JSON.stringify(message);
    if (this.isOpen) this.ws.send(payload);
    else this.queue.push(payload);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
  }
}
