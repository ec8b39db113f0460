"""The chat API for scripts (`/api/v1/`, docs/api.md): OpenAI-compatible model list and chat
completions, and the user's conversations, authenticated by a personal API token
(`Authorization: Bearer`), never by the session cookie, so it is exempt from CSRF.

- `errors`: OpenAI's error shape and the messages; `auth`: the bearer check and its throttle;
- `schemas`: the request body of a chat completion, checked by pydantic;
- `answers`: an answer's events as this request's queue, turned into OpenAI chunks;
- `views`: models and conversations; `completions`: `POST /chat/completions`.

An edge of the app like the page's views: it calls the chat domain's services and the answer
task of `chatui.streaming.answer`; it must not import consumers, routing or the page's views.
"""
