"""How images built here get torch's CPU build, the way this machine's own pip gets it.

PyPI's Linux torch wheel carries CUDA (gigabytes). This machine's pip finds the CPU build in a
`find-links` folder of its pip configuration; the check serves that folder over HTTP on the
loopback during the builds and passes its URL as the inference image's TORCH_FIND_LINKS build
argument (builds run in the host's network). Machines whose pip has no such folder get
TORCH_INDEX_URL, PyTorch's CPU index, from docker-compose.cpu.yml instead.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

from scripts.compose_check.commands import say


def pip_config_list() -> str:
    """`pip config list` of the Python running the check."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stdout


def find_links_dirs(pip_config: str) -> list[Path]:
    """The local folders pip's `find-links` names, in its configuration or PIP_FIND_LINKS."""
    values = [os.environ.get("PIP_FIND_LINKS", "")]
    values += re.findall(r"\.find-links='([^']*)'", pip_config)
    return [Path(v) for value in values for v in value.split() if v.startswith("/")]


def torch_wheel_dir(pip_config: str, version: str) -> Path | None:
    """The first find-links folder holding a CPU torch wheel of `version`, if any."""
    for folder in find_links_dirs(pip_config):
        if folder.is_dir() and any(folder.glob(f"torch-{version}+cpu-*.whl")):
            return folder
    return None


class WheelServer:
    """A folder served read-only over HTTP on 127.0.0.1 in a background thread."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        handler = functools.partial(QuietHandler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> WheelServer:
        self.thread.start()
        say(f"serving {self.folder} at {self.url}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """A file handler that does not log each request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        return
