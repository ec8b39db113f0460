#!/bin/sh
# As the official image: `redis-server ARGS` without a config file turns protected mode off.
set -e
if [ "$1" = "redis-server" ]; then
    shift
    exec setpriv --reuid=redis --regid=redis --init-groups redis-server --protected-mode no --save "" "$@"
fi
exec "$@"
