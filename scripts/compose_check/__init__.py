"""`make compose-check`: the compose stack built and started on this machine, then removed.

A private Docker daemon, locally made stand-ins for the registry's base images, a host-network
variant of docker-compose.yml, one chat through the web container, a restart of `web`, and
teardown. Imports nothing from `chatui`, `config` or `inference`: it sees the stack only over
HTTP, a websocket and Postgres, as a user or an operator would.
"""
