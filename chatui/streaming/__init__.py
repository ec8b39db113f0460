"""Answers as server tasks and their events to every open socket, as small modules layered
top to bottom (import-linter keeps them acyclic):

- `answer`: the answer's task (its state, the token loop, the listener); `tool_answer`: an
  answer with tools (the tool loop's events and saves);
  `socket`: the consumer's end of the fan-out (beside `answer`, never importing it);
- `saver`: batched saves, heartbeat, the final save and the title; `reaper`: stale answers of
  dead processes, and its ASGI middleware;
- `publish`: group names, publishing, `TokenBatcher` and `RemoteQueue`;
- `hub`: what this process has running (the protocols it stores are declared there).
"""
