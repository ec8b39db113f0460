"""Shared by the inference tests: the project root on `sys.path` for `tests.inference.*` helpers.

The suite-wide conftest already keeps every client away from the model hub.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `tests.inference.live_server` and the project packages
    sys.path.insert(0, str(ROOT))
