"""OpenID settings read as chat-ui reads them: the OPENID_* variables, the older OPENID_CONFIG
object over them, the JSON arrays of the allow-lists and admins, and one clear error per bad
value."""

from __future__ import annotations

import re
import runpy
from pathlib import Path
from typing import Any

import pytest

from config.openid import (
    DEFAULT_SCOPES,
    MISSING_PROVIDER,
    NOT_A_STRING_LIST,
    NOT_A_TOLERANCE,
    NOT_AN_OBJECT,
    OpenIDSettings,
    openid_settings,
)

PROVIDER = "https://sso.example.com/realms/staff"


def test_unset_means_no_provider_and_chat_ui_defaults() -> None:
    openid = openid_settings({})
    assert not openid.is_enabled
    assert (openid.scopes, openid.name_claim, openid.tolerance_s) == (DEFAULT_SCOPES, "name", 0)
    assert openid == OpenIDSettings()


def test_variables_configure_the_provider_and_the_policy() -> None:
    openid = openid_settings(
        {
            "OPENID_PROVIDER_URL": PROVIDER,
            "OPENID_CLIENT_ID": "chat",
            "OPENID_CLIENT_SECRET": "s3cret",
            "OPENID_SCOPES": "openid  profile email",
            "OPENID_NAME_CLAIM": "given_name",
            "OPENID_TOLERANCE": "30",
            "OPENID_RESOURCE": "https://api.example.com",
            "ALLOWED_USER_EMAILS": '["Boss@Example.com"]',
            "ALLOWED_USER_DOMAINS": '["Example.com", "corp.example"]',
            "ADMIN_USERS": '["boss@example.com", "0b7c-sub"]',
            "OPENID_ADMIN_CLAIM": "groups",
            "OPENID_ADMIN_VALUES": '["chat-admins"]',
            "AUTOMATIC_LOGIN": "true",
        }
    )
    assert openid.is_enabled and openid.automatic_login
    assert openid.scopes == "openid profile email"
    assert (openid.name_claim, openid.tolerance_s) == ("given_name", 30)
    assert openid.resource == "https://api.example.com"
    assert openid.allowed_emails == ("boss@example.com",)
    assert openid.allowed_domains == ("example.com", "corp.example")
    assert openid.admin_users == ("boss@example.com", "0b7c-sub")
    assert (openid.admin_claim, openid.admin_values) == ("groups", ("chat-admins",))
    assert openid.discovery_url == f"{PROVIDER}/.well-known/openid-configuration"
    assert openid.provider_origin == "https://sso.example.com"


def test_openid_config_keys_win_when_set_and_empty_ones_fall_back() -> None:
    openid = openid_settings(
        {
            "OPENID_PROVIDER_URL": "https://ignored.example",
            "OPENID_CLIENT_ID": "from-variable",
            "OPENID_CLIENT_SECRET": "variable-secret",
            # JSON5, as chat-ui parses it: unquoted keys, single quotes, a trailing comma
            # keys chat-ui does not read (a newer client metadata document) are ignored
            "OPENID_CONFIG": (
                f"{{PROVIDER_URL: '{PROVIDER}/', CLIENT_ID: '', TOLERANCE: 5, client_name: 'x',}}"
            ),
        }
    )
    assert openid.provider_url == f"{PROVIDER}/"
    assert openid.client_id == "from-variable"
    assert openid.tolerance_s == 5
    assert openid.discovery_url == f"{PROVIDER}/.well-known/openid-configuration"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OPENID_CONFIG": "[1, 2]"}, NOT_AN_OBJECT.format(value="[1, 2]")),
        ({"OPENID_CONFIG": "{CLIENT_ID: "}, NOT_AN_OBJECT.format(value="{CLIENT_ID:")),
        ({"ALLOWED_USER_DOMAINS": "example.com"}, "ALLOWED_USER_DOMAINS must be a JSON array"),
        ({"ADMIN_USERS": "[1]"}, NOT_A_STRING_LIST.format(name="ADMIN_USERS", value="[1]")),
        ({"OPENID_TOLERANCE": "-3"}, NOT_A_TOLERANCE.format(value="-3")),
        ({"OPENID_NAME_CLAIM": "email"}, "OPENID_NAME_CLAIM cannot be one of"),
        ({"OPENID_CLIENT_ID": "chat", "OPENID_CLIENT_SECRET": "s"}, MISSING_PROVIDER),
        (
            {
                "OPENID_PROVIDER_URL": PROVIDER,
                "OPENID_CLIENT_ID": "chat",
                "OPENID_CLIENT_SECRET": "s",
                "OPENID_SCOPES": "profile email",
            },
            "OPENID_SCOPES must include 'openid'",
        ),
        ({"AUTOMATIC_LOGIN": "ture"}, "AUTOMATIC_LOGIN must be one of"),
    ],
)
def test_a_bad_value_is_an_error_that_names_it(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        openid_settings(env)


def test_a_full_discovery_url_is_kept() -> None:
    url = f"{PROVIDER}/.well-known/openid-configuration"
    assert OpenIDSettings(provider_url=url).discovery_url == url


SETTINGS_FILE = Path(__file__).resolve().parents[2] / "config" / "settings" / "base.py"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
OPENID_BACKEND = "chatui.oidc.backend.OpenIDBackend"
PROVIDER_ENV = {
    "OPENID_PROVIDER_URL": PROVIDER,
    "OPENID_CLIENT_ID": "chat",
    "OPENID_CLIENT_SECRET": "s3cret",
}


def settings_with(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    """The settings module run afresh with `env` (every login variable else blank)."""
    names = [*PROVIDER_ENV, "OPENID_CONFIG", "ALLOW_LOCAL_LOGIN", "ALLOW_SIGNUP"]
    for name, value in (dict.fromkeys(names, "") | {"SECRET_KEY": "x"} | env).items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))


def test_local_accounts_stay_on_without_a_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_with(monkeypatch)
    assert settings["ALLOW_LOCAL_LOGIN"] and settings["ALLOW_SIGNUP"]
    assert MODEL_BACKEND in settings["AUTHENTICATION_BACKENDS"]
    assert OPENID_BACKEND not in settings["AUTHENTICATION_BACKENDS"]


def test_with_a_provider_passwords_and_signup_are_off_unless_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_with(monkeypatch, **PROVIDER_ENV)
    assert not settings["ALLOW_LOCAL_LOGIN"] and not settings["ALLOW_SIGNUP"]
    assert settings["AUTHENTICATION_BACKENDS"][-1] == OPENID_BACKEND
    assert MODEL_BACKEND not in settings["AUTHENTICATION_BACKENDS"]
    form_action = settings["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]["form-action"]
    assert "https://sso.example.com" in form_action

    local = settings_with(monkeypatch, **PROVIDER_ENV, ALLOW_LOCAL_LOGIN="true")
    assert local["ALLOW_LOCAL_LOGIN"] and not local["ALLOW_SIGNUP"]
    assert MODEL_BACKEND in local["AUTHENTICATION_BACKENDS"]
    with pytest.raises(ValueError, match="ALLOW_SIGNUP=true needs ALLOW_LOCAL_LOGIN=true"):
        settings_with(monkeypatch, **PROVIDER_ENV, ALLOW_SIGNUP="true")
