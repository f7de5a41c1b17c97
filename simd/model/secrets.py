"""Secrets stay out of results: what counts as one, and how it is taken out of what simd writes.

Two kinds: values under a secret-looking key (`password`, `token`, `api_key`, ...) and the user
information of a URL (`mqtt://user:pass@host`: the user name may be a device token too, so both
go). Every file a run writes about itself (run.json, and through it results.duckdb and the
reports), every message naming a target and every rendered manifest pass through here.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

REDACTED = "***"
# keys whose values are secrets (not `password_env` or `token_file`: those name where a
# secret lives, which a reader of the manifest needs)
_SECRET_KEY = re.compile(
    r"^(password|passwd|secret|token|access_token|api[_-]?key|credentials?)$", re.IGNORECASE
)
# scheme://userinfo@ anywhere in a text (userinfo: up to the first '@' before any '/')
_URL_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]+@")
# ?password=... or &token=... in a URL's query (a plugin target's options)
_QUERY_SECRET = re.compile(
    r"([?&](?:password|passwd|secret|token|access_token|api[_-]?key|credentials?)=)[^&#\s'\"]+",
    re.IGNORECASE,
)


def redact(obj: Any) -> Any:
    """A copy with every value under a secret-looking key replaced by ***, and the user
    information of every URL in a string replaced by *** too."""
    if isinstance(obj, dict):
        return {
            k: (REDACTED if _SECRET_KEY.match(str(k)) and v not in (None, "") else redact(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [redact(v) for v in obj]
    if isinstance(obj, str):
        return redact_text(obj)
    return obj


def redact_text(text: str) -> str:
    """`text` with every URL's user name and password, and secret-looking query parameters
    (`?password=`, `&token=`), replaced by ***."""
    if "=" in text:
        text = _QUERY_SECRET.sub(rf"\g<1>{REDACTED}", text)
    if "@" not in text:
        return text
    return _URL_USERINFO.sub(rf"\g<1>{REDACTED}@", text)


def strip_credentials(url: str) -> str:
    """A URL without user name or password (recordings keep where they came from, not how)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def url_credentials(url: str) -> tuple[str | None, str | None]:
    """(user name, password) given in a URL, percent-decoded; None where absent."""
    parts = urlsplit(url)
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return user, password


def is_redacted(url: str) -> bool:
    """Whether a URL's credentials (or a secret query parameter) were taken out by `redact`
    (a run.json read back)."""
    return f"://{REDACTED}@" in url or (_QUERY_SECRET.sub("", url) != url and f"={REDACTED}" in url)
