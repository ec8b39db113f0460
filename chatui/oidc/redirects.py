"""Where a login may send the visitor afterwards: only a path of this site.

`next=` travels through the provider and back, so an absolute URL, a scheme-relative
`//host` or a backslash trick would make the login page an open redirect.
"""

from __future__ import annotations

from django.utils.http import url_has_allowed_host_and_scheme

DEFAULT_NEXT = "/"


def safe_next(value: str | None) -> str:
    """`value` when it is a same-origin relative path (`/...`), else `DEFAULT_NEXT`."""
    if not value or not value.startswith("/"):
        return DEFAULT_NEXT
    if not url_has_allowed_host_and_scheme(value, allowed_hosts=set(), require_https=False):
        return DEFAULT_NEXT
    return value
