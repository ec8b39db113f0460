// JSON over HTTP for the chat page: the one place that calls fetch() and adds the CSRF header.
// Imports nothing; callers get parsed JSON or an ApiError whose message is readable.

export const NETWORK_ERROR = "The server could not be reached. Check your connection and try again.";

/** An HTTP failure, carrying the server's readable `{"error"}` text. */
export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && meta.content) return meta.content;
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

// NOTE: writes are sent one at a time, in the order they were made. A visitor gets their
// identity (a session cookie) from their first write; two writes sent before that answer
// arrives would each make a new visitor, and the later cookie would orphan the earlier write
// (a model picked, then a prompt saved: after a reload the model was gone). Reads never wait.
let lastWrite = Promise.resolve();

/** Calls the JSON API; resolves with the parsed body (null for 204). A FormData body goes
 * as multipart (file uploads), anything else as JSON. Writes wait for the previous write. */
export function api(method, path, body) {
  if (method === "GET") return send(method, path, body);
  const result = lastWrite.then(() => send(method, path, body));
  lastWrite = result.catch(() => {});
  return result;
}

async function send(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  const isForm = body instanceof FormData;
  if (body !== undefined && !isForm) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined || isForm ? body : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(NETWORK_ERROR, 0);
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message = (data && data.error) || `Request failed (${response.status}).`;
    throw new ApiError(message, response.status);
  }
  return data;
}

export const getJSON = (path) => api("GET", path);
export const postJSON = (path, body) => api("POST", path, body ?? {});
export const patchJSON = (path, body) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);

/** Uploads one file (multipart field `file`). */
export function uploadFile(path, file) {
  const form = new FormData();
  form.append("file", file, file.name);
  return api("POST", path, form);
}
