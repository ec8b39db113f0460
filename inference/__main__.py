"""`python -m inference`: start the TGI-compatible server (see `inference.cli`)."""

from __future__ import annotations

import sys

from inference.cli import main

if __name__ == "__main__":
    sys.exit(main())
