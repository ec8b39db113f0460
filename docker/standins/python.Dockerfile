# Stand-in for python:3.11-slim, made without a registry (`make compose-check`): Debian's
# Python 3.11 in a venv on PATH, with the machine's CA certificates and pip settings so that
# pip inside a build reaches the same package index as the machine itself.
FROM chatui-standin/debian:bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv passwd ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY ca-certificates.crt /etc/ssl/certs/machine-ca-certificates.crt
COPY pip.conf /etc/pip.conf
RUN python3 -m venv /usr/local/python
ENV PATH=/usr/local/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8
CMD ["python3"]
