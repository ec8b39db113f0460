"""The OpenID provider as an Authlib client: discovery, the authorization code flow with PKCE
(S256), `state` and `nonce`, and the ID token's checks (signature against the provider's
JWKS, fetched again when an unknown key id shows up, so keys can rotate; issuer, audience,
expiry and nonce). No JWT is decoded here by hand.

One client per settings value, kept for the process: it caches the provider's metadata and
keys between logins.
"""

from __future__ import annotations

import functools
from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.integrations.base_client import OAuthError
from authlib.integrations.django_client import DjangoOAuth2App, OAuth
from django.http import HttpRequest
from joserfc.errors import JoseError
from requests import RequestException

from config.openid import OpenIDSettings

PROVIDER_TIMEOUT_S = 10.0
CALLBACK_PATH = "/login/callback"
# What a failed exchange or a token that does not check out raises.
LOGIN_ERRORS = (OAuthError, JoseError, RequestException, ValueError, KeyError)


class UnverifiedIdentity(ValueError):
    """The provider's answer lacks a checked ID token, or its userinfo names someone else."""


@functools.lru_cache(maxsize=4)
def provider_client(openid: OpenIDSettings) -> DjangoOAuth2App:
    """The Authlib client of `openid`'s provider (metadata loaded on first use)."""
    return OAuth().register(
        name="openid",
        client_id=openid.client_id,
        client_secret=openid.client_secret,
        server_metadata_url=openid.discovery_url,
        client_kwargs={
            "scope": openid.scopes,
            "code_challenge_method": "S256",
            "default_timeout": PROVIDER_TIMEOUT_S,
        },
    )


def authorization_redirect(
    request: HttpRequest, openid: OpenIDSettings, *, prompt: str = ""
) -> Any:
    """The redirect to the provider's login; state, nonce and PKCE verifier go in the session.
    `prompt`: OpenID's `prompt` parameter (e.g. "login"), when not empty."""
    extra = {"resource": openid.resource} if openid.resource else {}
    if prompt:
        extra["prompt"] = prompt
    redirect_uri = request.build_absolute_uri(CALLBACK_PATH)
    return provider_client(openid).authorize_redirect(request, redirect_uri, **extra)


def verified_login(request: HttpRequest, openid: OpenIDSettings) -> tuple[dict[str, Any], str]:
    """The callback's claims (ID token, completed by the userinfo endpoint) and the raw ID
    token; raises one of LOGIN_ERRORS when anything does not check out."""
    client = provider_client(openid)
    # NOTE: Authlib checks `aud` only through these options (without them, a token issued to
    # another audience passes when its `azp` names this client); `iss` likewise.
    expected = {
        "iss": {"essential": True, "value": client.load_server_metadata()["issuer"]},
        "aud": {"essential": True, "value": openid.client_id},
    }
    token = client.authorize_access_token(
        request, claims_options=expected, leeway=openid.tolerance_s
    )
    id_claims = token.get("userinfo")
    if not id_claims or not token.get("id_token"):
        raise UnverifiedIdentity("the provider returned no ID token")
    claims = dict(id_claims)
    if client.load_server_metadata().get("userinfo_endpoint"):
        userinfo = client.userinfo(token=token)
        if userinfo.get("sub") != claims["sub"]:
            raise UnverifiedIdentity("the userinfo endpoint names another subject")
        claims = {**userinfo, **claims}
    return claims, token["id_token"]


def end_session_url(request: HttpRequest, openid: OpenIDSettings, id_token: str) -> str | None:
    """The provider's logout URL (RP-initiated logout) that returns here, or None when the
    provider offers none or cannot be reached."""
    try:
        endpoint = provider_client(openid).load_server_metadata().get("end_session_endpoint")
    except LOGIN_ERRORS:
        return None
    if not endpoint:
        return None
    # No `state`: the session it would be checked against has just ended.
    return add_params_to_uri(
        endpoint,
        {
            "id_token_hint": id_token,
            "post_logout_redirect_uri": request.build_absolute_uri("/"),
            "client_id": openid.client_id,
        },
    )
