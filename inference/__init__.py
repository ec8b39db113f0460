"""A text-generation server that speaks the Hugging Face TGI protocol (`python -m inference`).

The package never imports Django: `chatui` talks to it only over HTTP.
"""

from __future__ import annotations

__version__ = "0.1.0"
