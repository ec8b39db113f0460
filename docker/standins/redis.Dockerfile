# Stand-in for redis:7-alpine, made without a registry (`make compose-check`): Debian's real
# redis-server and redis-cli. Like the official image it listens on every address with
# protected mode off, as a container behind its own network expects; it writes no snapshots
# (the stack gives Redis no volume: it carries only the channel layer's messages).
FROM chatui-standin/debian:bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server redis-tools \
    && rm -rf /var/lib/apt/lists/*
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["redis-server"]
