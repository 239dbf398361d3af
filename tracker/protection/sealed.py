"""Sealed personal data: AES-GCM ciphertext under an allegation's data key, stored in events."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import Transcoding

from tracker.domain.values import PROTECTED_LIST_FIELDS

PROTECTED_MARK = "[protected]"
ERASED_MARK = "[erased]"


@dataclass(frozen=True)
class Sealed:
    """Encrypted personal data; `fields` (names only, never values) stay in clear for redaction."""

    fields: tuple[str, ...]
    nonce: bytes
    ciphertext: bytes


def _aad(allegation_id: str) -> bytes:
    # Binding the ciphertext to its allegation stops it being transplanted into another.
    return b"tracker-protected-v1|" + allegation_id.encode()


def seal(data_key: bytes, allegation_id: str, data: dict[str, Any]) -> Sealed:
    """Encrypt a `protected` block with the allegation's data key."""
    nonce = os.urandom(12)
    plaintext = json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, _aad(allegation_id))
    return Sealed(tuple(sorted(data)), nonce, ciphertext)


def unseal(data_key: bytes, allegation_id: str, sealed: Sealed) -> dict[str, Any]:
    """Decrypt a sealed block; raises ValueError when it does not authenticate."""
    try:
        plain = AESGCM(data_key).decrypt(sealed.nonce, sealed.ciphertext, _aad(allegation_id))
    except InvalidTag:
        raise ValueError("sealed personal data does not authenticate") from None
    data: dict[str, Any] = json.loads(plain)
    return data


def masked(fields: tuple[str, ...] | list[str], mark: str) -> dict[str, Any]:
    """Every value of a protected block replaced by `mark` (lists keep the list shape)."""
    return {f: [mark] if f in PROTECTED_LIST_FIELDS else mark for f in fields}


class SealedAsDict(Transcoding):
    """Stores a Sealed value as base64 strings inside the event's JSON."""

    type = Sealed
    name = "sealed_v1"

    def encode(self, obj: Sealed) -> dict[str, Any]:
        return {
            "fields": list(obj.fields),
            "nonce": base64.b64encode(obj.nonce).decode(),
            "ciphertext": base64.b64encode(obj.ciphertext).decode(),
        }

    def decode(self, data: dict[str, Any]) -> Sealed:
        return Sealed(
            tuple(data["fields"]),
            base64.b64decode(data["nonce"]),
            base64.b64decode(data["ciphertext"]),
        )
