"""Opaque pagination cursors: a keyset position signed with HMAC-SHA256.

The key is random, made once and kept in the `meta` table, so every process of a deployment
accepts the cursors of every other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from tracker.domain.errors import ValidationError
from tracker.persistence.db import Database, meta_secret

_META_NAME = "listing_cursor_key"
_TAG_BYTES = 16
_BAD = ["Malformed or altered cursor: use `next_cursor` exactly as received, "
        "or start again without `cursor`."]


def cursor_secret(db: Database) -> bytes:
    """The deployment's cursor key, created on first use."""
    return meta_secret(db, _META_NAME)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    # Only the one canonical spelling: base64 leaves spare bits in a last character, so
    # another string could decode to the same bytes.
    if _b64(raw) != text:
        raise ValueError("non-canonical base64")
    return raw


class CursorCodec:
    """Encodes keyset positions as signed strings and refuses altered ones."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def _tag(self, payload: bytes) -> bytes:
        return hmac.new(self.secret, b"cursor-v1|" + payload, hashlib.sha256).digest()[:_TAG_BYTES]

    def encode(self, position: list[Any]) -> str:
        """A cursor for this keyset position."""
        payload = json.dumps(position, separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._tag(payload))}"

    def decode(self, cursor: str, arity: int = 2) -> list[Any]:
        """The keyset position of a cursor made by `encode`; ValidationError otherwise."""
        try:
            body, _, tag = cursor.partition(".")
            payload, given = _unb64(body), _unb64(tag)
        except (ValueError, binascii.Error):
            raise ValidationError({"cursor": _BAD}) from None
        if not hmac.compare_digest(given, self._tag(payload)):
            raise ValidationError({"cursor": _BAD})
        try:
            value = json.loads(payload)
        except ValueError:
            raise ValidationError({"cursor": _BAD}) from None
        if (not isinstance(value, list) or len(value) != arity
                or not all(isinstance(v, str) for v in value)):
            raise ValidationError({"cursor": _BAD})
        return value
