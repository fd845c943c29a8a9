"""Knox-style tokens: HTTP Basic in, an HMAC-signed JWT out; bearer checks on every API call.

Two kinds of principal get tokens: workload users (user name and password, the Knox routes) and
access keys (key id and private key, the console's access-key route). A token names its principal
as `sub`; the bearer check accepts both kinds, so an access key acts as a user named by its key id.

The token is a real JWT (HS256) whose claims are `sub` (user), `iat`, `exp` (seconds, fractional
so lifetimes down to one second are exact), `jti` (= `token_id`) and `iss`. The signing key is
made once per data directory and kept in state.db, so tokens stay valid across a restart.
[I] `endpoint_public_cert` is base64 text that names the scheme; there is no certificate locally.
An Authorization header with non-ASCII characters (HTTP carries them as raw bytes, Starlette hands
them over as latin-1 text) is a 401 like any other malformed credential.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any

from .errors import Unauthorized
from .store import Store

ISSUER = "cde_local-knox"
PUBLIC_CERT = base64.b64encode(b"cde_local: HS256-signed tokens, no public certificate").decode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _require_ascii(value: str, message: str) -> None:
    if not value.isascii():
        raise Unauthorized(message)


def _check_credentials(authorization: str | None, known: dict[str, str], refusal: str) -> str:
    """The name of a valid `Authorization: Basic ...` header whose name and password are in `known`."""
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        raise Unauthorized("authentication required: send HTTP Basic credentials")
    _require_ascii(value, "malformed HTTP Basic credentials")
    try:
        name, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("malformed HTTP Basic credentials") from None
    expected = known.get(name)
    if not sep or expected is None or not hmac.compare_digest(password.encode(), expected.encode()):
        raise Unauthorized(refusal)
    return name


class TokenIssuer:
    def __init__(
        self, store: Store, users: dict[str, str], access_keys: dict[str, str] | None = None
    ) -> None:
        key = store.get_meta("token_key")
        if key is None:
            key = secrets.token_hex(32)
            store.set_meta("token_key", key)
        self._key = bytes.fromhex(key)
        self._users = users
        self._access_keys = access_keys if access_keys is not None else {}

    def check_basic(self, authorization: str | None) -> str:
        """The user named by a valid `Authorization: Basic ...` header; Unauthorized otherwise."""
        return _check_credentials(authorization, self._users, "invalid username or password")

    def check_access_key(self, authorization: str | None) -> str:
        """The key id of a valid `Authorization: Basic base64(key id:private key)`; Unauthorized otherwise."""
        return _check_credentials(authorization, self._access_keys, "invalid access key id or private key")

    def issue(self, user: str, ttl_s: float) -> dict[str, Any]:
        """The Knox reply: all six fields; `expires_in` is ABSOLUTE epoch milliseconds."""
        now = time.time()
        expires_ms = int((now + ttl_s) * 1000)
        token_id = str(uuid.uuid4())
        claims = {"sub": user, "iat": int(now), "exp": expires_ms / 1000, "jti": token_id, "iss": ISSUER}
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = _b64(hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        return {
            "access_token": f"{header}.{payload}.{signature}",
            "token_id": token_id,
            "managed": "false",
            "token_type": "Bearer",
            "expires_in": expires_ms,
            "endpoint_public_cert": PUBLIC_CERT,
        }

    def check_bearer(self, authorization: str | None) -> str:
        """The user of a valid, unexpired `Authorization: Bearer <jwt>`; Unauthorized otherwise."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("missing bearer token: send 'Authorization: Bearer <access_token>'")
        _require_ascii(token, "invalid token")  # hmac.compare_digest refuses non-ASCII text
        parts = token.split(".")
        if len(parts) != 3:
            raise Unauthorized("invalid token")
        expected = _b64(hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, parts[2]):
            raise Unauthorized("invalid token: bad signature")
        try:
            claims = json.loads(_unb64(parts[1]))
            user, expires = str(claims["sub"]), float(claims["exp"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise Unauthorized("invalid token: bad claims") from None
        if time.time() >= expires:
            raise Unauthorized("token expired")
        if user not in self._users and user not in self._access_keys:
            raise Unauthorized("invalid token: unknown user")
        return user
