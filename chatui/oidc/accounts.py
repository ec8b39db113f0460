"""The local user an identity at the provider logs in as, made on its first login.

Keyed by issuer + `sub` (`OpenIDAccount`), never by e-mail alone: a provider may reassign an
address, and a local account of the same name must not be taken over. Each login refreshes
the e-mail, the display name and the admin flags from the claims, so a revoked admin loses
the admin at the next login. The new user has no usable password.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from chatui.models import OpenIDAccount
from chatui.oidc.policy import is_admin, verified_email
from config.openid import OpenIDSettings

USERNAME_MAX_LENGTH = 150
_NOT_IN_USERNAME = re.compile(r"[^\w.@+-]")


def _free_username(claims: Mapping[str, Any]) -> str:
    """`preferred_username`, else the e-mail, else `sub`, made unique with a `-N` suffix."""
    User = get_user_model()
    wanted = claims.get("preferred_username") or claims.get("email") or claims.get("sub")
    base = _NOT_IN_USERNAME.sub("", str(wanted or ""))[: USERNAME_MAX_LENGTH - 8] or "user"
    name, number = base, 2
    while User.objects.filter(username__iexact=name).exists():
        name, number = f"{base}-{number}", number + 1
    return name


def openid_user_login(*, issuer: str, claims: Mapping[str, Any], openid: OpenIDSettings) -> Any:
    """The user of (issuer, claims["sub"]), created on first login, its profile and admin
    flags updated from `claims`."""
    User = get_user_model()
    subject = str(claims["sub"])
    with transaction.atomic():
        account = (
            OpenIDAccount.objects.select_for_update()
            .select_related("user")
            .filter(issuer=issuer, subject=subject)
            .first()
        )
        if account is None:
            user = User(username=_free_username(claims))
            user.set_unusable_password()
            user.save()
            account = OpenIDAccount(user=user, issuer=issuer, subject=subject)
        user = account.user
        admin = is_admin(claims, openid)
        user.email = verified_email(claims)
        user.first_name = str(claims.get(openid.name_claim) or "")[:150]
        user.is_staff = user.is_superuser = admin
        user.save(update_fields=["email", "first_name", "is_staff", "is_superuser"])
        account.email = user.email
        account.save()
    return user
