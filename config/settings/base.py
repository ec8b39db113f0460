"""Settings shared by every deployment.

The environment is read in one place, `config.env`: `load_env` merges the process environment,
`.env.local` and `.env`, and its `env_*` readers type one value (booleans strictly: a typo stops
start-up); nothing else here touches `os.environ`. Must not import `chatui` or `inference`.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF

from config.env import env_bool, env_int, env_list, load_env
from config.openid import openid_settings

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

ENV: dict[str, str] = load_env(BASE_DIR)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once into var/secret_key."""
    if ENV.get("SECRET_KEY"):
        return ENV["SECRET_KEY"]
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool(ENV, "DEBUG")
ALLOWED_HOSTS = env_list(ENV, "ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list(ENV, "CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "chatui",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "chatui.oidc.middleware.AutomaticLoginMiddleware",  # AUTOMATIC_LOGIN=true only
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into the page that says so
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_DEFAULT_DATABASE_URL = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(ENV.get("DATABASE_URL") or _DEFAULT_DATABASE_URL),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # NOTE: generations write from worker threads while requests read; WAL + IMMEDIATE
    # transactions + a busy timeout keep SQLite from answering "database is locked".
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # NOTE: a pool (psycopg-pool) instead of a new connection per request or per generation
    # step (a Postgres backend forked each time: most of the database's CPU under load). Not
    # CONN_MAX_AGE: every request runs on its own thread, so persistent connections would
    # pile up by the hundreds; a pooled one goes back to the pool when the request closes it.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 2, "max_size": 16}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = ENV.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # channels_redis's layer, recovering from a Redis restart (reconnects, groups).
            "BACKEND": "chatui.layers.RedisChannelLayer",
            # NOTE: no read timeout: redis-py 8 defaults to 5 s, which a quiet socket's
            # blocking receive (channels_redis waits 5 s) outlasts, dropping the connection.
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
                "capacity": 2000,
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 2000}}
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# Login throttling (django-axes), on /login and /admin/login/ alike: after LOGIN_FAILURE_LIMIT
# failed attempts for one account, or from one address, that account or address is refused
# for LOGIN_COOLOFF_MINUTES, with a page that says so (chatui.views.login_locked_out).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int(ENV, "LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int(ENV, "LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_DISABLE_ACCESS_LOG = True  # failures only: no row per successful login
AXES_LOCKOUT_CALLABLE = "chatui.views.login_locked_out"
AXES_VERBOSE = False

# Single sign-on (chatui.oidc, docs/security.md): OpenID Connect configured as chat-ui does.
# With a provider configured, local passwords and sign-up are off unless asked for: the
# provider decides who may log in, and a local account would go round its allow-lists.
OPENID = openid_settings(ENV)
ALLOW_LOCAL_LOGIN = env_bool(ENV, "ALLOW_LOCAL_LOGIN", not OPENID.is_enabled)
ALLOW_SIGNUP = env_bool(ENV, "ALLOW_SIGNUP", not OPENID.is_enabled)
if ALLOW_SIGNUP and not ALLOW_LOCAL_LOGIN:
    raise ValueError("ALLOW_SIGNUP=true needs ALLOW_LOCAL_LOGIN=true (a new account logs in)")
if not ALLOW_LOCAL_LOGIN:  # no password is checked anywhere, /admin/login/ included
    AUTHENTICATION_BACKENDS.remove("django.contrib.auth.backends.ModelBackend")
if OPENID.is_enabled:
    AUTHENTICATION_BACKENDS.append("chatui.oidc.backend.OpenIDBackend")

# Sessions: an anonymous visitor gets one on their first write (chatui.identity), not on a GET.
SESSION_COOKIE_AGE = env_int(ENV, "SESSION_COOKIE_AGE", 60 * 60 * 24 * 30)
SESSION_ENGINE = "chatui.sessions"  # database sessions; a malformed key is no session

# TLS deployments (README: Security). HTTPS=true marks the cookies Secure and sends HSTS;
# behind a proxy that terminates TLS, SECURE_PROXY_SSL_HEADER names the header it sets to
# "https" (e.g. X-Forwarded-Proto), without which Django cannot tell the request was secure.
HTTPS = env_bool(ENV, "HTTPS")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int(ENV, "SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool(ENV, "SECURE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = env_bool(ENV, "SECURE_HSTS_PRELOAD")
SECURE_SSL_REDIRECT = env_bool(ENV, "SECURE_SSL_REDIRECT")
if ENV.get("SECURE_PROXY_SSL_HEADER"):
    _header = ENV["SECURE_PROXY_SSL_HEADER"].strip().upper().replace("-", "_")
    SECURE_PROXY_SSL_HEADER = (f"HTTP_{_header.removeprefix('HTTP_')}", "https")

# Content-Security-Policy (django-csp) on every response: every script is a file of ours (no
# inline script, no eval), so injected markup cannot run even if it got past the sanitiser.
# Styles allow inline attributes (KaTeX positions formulas with them); images load only from
# here or data: URLs, so a message's markdown image cannot call a third-party server.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:", "blob:"],  # blob: the previews of files being attached
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        **({"upgrade-insecure-requests": True} if HTTPS else {}),
    }
}
if OPENID.is_enabled:  # the logout form ends on the provider's end-session page
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"].append(OPENID.provider_origin)
CSRF_FAILURE_VIEW = "chatui.api.csrf_failure"  # JSON for /api/ paths

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# Served by WhiteNoise straight from the finders, so `collectstatic` is optional (and an
# absent STATIC_ROOT is expected, not worth a warning).
WHITENOISE_USE_FINDERS = True
warnings.filterwarnings("ignore", message="No directory at: ")
# Attachments and assistant avatars go through Django's storage API, alias "attachments":
# local files under ATTACHMENTS_DIR by default, or any Django storage backend named by
# ATTACHMENTS_STORAGE (a class path) with ATTACHMENTS_STORAGE_OPTIONS (a JSON object), e.g.
# django-storages' S3 backend. They are never served from the storage directly: the app
# checks who asks first (chatui.api.attachment_file).
ATTACHMENTS_DIR = Path(ENV.get("ATTACHMENTS_DIR") or VAR_DIR / "attachments")
_ATTACHMENTS_BACKEND = (
    ENV.get("ATTACHMENTS_STORAGE") or "django.core.files.storage.FileSystemStorage"
)
_ATTACHMENTS_OPTIONS = json.loads(ENV.get("ATTACHMENTS_STORAGE_OPTIONS") or "{}")
if _ATTACHMENTS_BACKEND.endswith(".FileSystemStorage"):
    _ATTACHMENTS_OPTIONS.setdefault("location", str(ATTACHMENTS_DIR))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "attachments": {"BACKEND": _ATTACHMENTS_BACKEND, "OPTIONS": _ATTACHMENTS_OPTIONS},
}
# Limits on what a user may attach (bytes, files per message). Text files must also fit the
# model's `parameters.truncate`; images go only to `"multimodal": true` models.
CHATUI_ATTACHMENT_MAX_IMAGE_BYTES = env_int(ENV, "ATTACHMENT_MAX_IMAGE_BYTES", 10 * 1024 * 1024)
CHATUI_ATTACHMENT_MAX_TEXT_BYTES = env_int(ENV, "ATTACHMENT_MAX_TEXT_BYTES", 1024 * 1024)
CHATUI_ATTACHMENT_MAX_FILES = env_int(ENV, "ATTACHMENT_MAX_FILES", 5)
# PDF, Word, PowerPoint, Excel and HTML files (read as text, see chatui.documents).
CHATUI_ATTACHMENT_MAX_DOCUMENT_BYTES = env_int(
    ENV, "ATTACHMENT_MAX_DOCUMENT_BYTES", 20 * 1024 * 1024
)
# A page fetched from a URL a user gives (chatui.net_guard): its size, the time it may take,
# and the networks it may be on besides the public internet (an admin's choice, e.g. an
# intranet: "10.0.0.0/8"; loopback, private and link-local addresses are refused otherwise).
CHATUI_URL_FETCH_MAX_BYTES = env_int(ENV, "URL_FETCH_MAX_BYTES", 10 * 1024 * 1024)
CHATUI_URL_FETCH_TIMEOUT_S = env_int(ENV, "URL_FETCH_TIMEOUT_S", 15)
CHATUI_URL_FETCH_ALLOWED_NETWORKS = env_list(ENV, "URL_FETCH_ALLOWED_NETWORKS", [])
for _network in CHATUI_URL_FETCH_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ValueError(f"URL_FETCH_ALLOWED_NETWORKS: {_network!r} is not a network") from None
CHATUI_AVATAR_MAX_BYTES = env_int(ENV, "ASSISTANT_AVATAR_MAX_BYTES", 1024 * 1024)

# Tools: MCP servers (MCP_SERVERS itself is read by chatui.tools.setup) and the tool loop.
CHATUI_TOOL_TIMEOUT_S = env_int(ENV, "TOOL_TIMEOUT_S", 30)
CHATUI_TOOL_MAX_RESULT_CHARS = env_int(ENV, "TOOL_MAX_RESULT_CHARS", 20_000)
CHATUI_TOOL_MAX_STEPS = env_int(ENV, "TOOL_MAX_STEPS", 6)
CHATUI_MCP_REFRESH_S = env_int(ENV, "MCP_TOOLS_REFRESH_S", 300)
CHATUI_MCP_ALLOW_USER_SERVERS = env_bool(ENV, "MCP_ALLOW_USER_SERVERS")
CHATUI_MCP_ALLOW_PRIVATE_URLS = env_bool(ENV, "MCP_ALLOW_PRIVATE_URLS")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"chatui": {"handlers": ["console"], "level": ENV.get("LOG_LEVEL", "INFO")}},
}

# Generation tuning (chatui.streaming): how often partial answers are saved and when a
# message whose process stopped sending heartbeats is marked interrupted.
CHATUI_SAVE_INTERVAL_S = 0.25
CHATUI_SAVE_EVERY_TOKENS = 32
CHATUI_HEARTBEAT_INTERVAL_S = 5.0
CHATUI_STALE_AFTER_S = 15.0

# Operations (chatui.ops): /readyz's checks each give up after this long; /metrics answers a
# METRICS_TOKEN bearer or a client address (or network) in METRICS_ALLOW_IPS.
CHATUI_READYZ_TIMEOUT_S = 2.0
METRICS_TOKEN = ENV.get("METRICS_TOKEN", "")
METRICS_ALLOW_IPS = env_list(ENV, "METRICS_ALLOW_IPS", ["127.0.0.1", "::1"])
