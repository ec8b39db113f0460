"""Test overrides: in-memory channel layer, fast hashing, a file-backed SQLite test database.

`DATABASE_URL` (CI: Postgres) still wins; only the SQLite test database name changes, because
generation tasks write from worker threads and need a real file (with WAL) to share it.
"""

from __future__ import annotations

import os
import tempfile

from config.settings.base import *  # noqa: F403
from config.settings.base import DATABASES

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CHANNEL_LAYERS = {
    "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 5000}}
}
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"chatui-test-{os.getpid()}.sqlite3"),
    }

# Attachments of a test run go to a temporary directory of its own.
STORAGES = {
    **STORAGES,  # noqa: F405
    "attachments": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": tempfile.mkdtemp(prefix="chatui-test-attachments-")},
    },
}

# Static files come from the finders; no collected STATIC_ROOT exists in a checkout.
STATIC_ROOT = None
