"""A URL's password, kept out of what is shown: one place for the settings and the model registry."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit


def url_passwords(url: str) -> list[str]:
    """The password of a URL, as written and decoded (both must stay out of logs); none: []."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    return list(dict.fromkeys(p for p in (password, unquote(password or "")) if p))


def masked_url(url: str) -> str:
    """`url` with its password shown as `***`: what logs, errors and pages may show of a database URL."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "(a URL that does not parse)"
    if not password:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
