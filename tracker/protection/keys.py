"""The master key and the per-allegation data keys it wraps (crypto-shredding by deletion)."""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tracker.domain.errors import MasterKeyError

_CHECK_PLAINTEXT = b"allegation-tracker master key check v1"


class MasterKey:
    """The key-encryption key; data keys are stored only wrapped by it."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise MasterKeyError(
                f"The master key must be 32 bytes (base64 of 32 random bytes), got {len(key)}. "
                "Generate one with: python -c 'import os,base64;"
                "print(base64.b64encode(os.urandom(32)).decode())'"
            )
        self._aead = AESGCM(key)

    @classmethod
    def load(cls, value: str | None, path: Path, *, create: bool) -> MasterKey:
        """From TRACKER_MASTER_KEY (base64) or the key file; create the file only when allowed."""
        if value:
            return cls(_b64(value, "TRACKER_MASTER_KEY"))
        if path.exists():
            return cls(_b64(path.read_text().strip(), str(path)))
        if not create:
            raise MasterKeyError(
                f"The master key file {path} is missing but the database already holds "
                "encrypted personal data. Restore the key file from your backup (or set "
                "TRACKER_MASTER_KEY); the tracker refuses to start without it."
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        key = os.urandom(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(key).decode() + "\n")
        return cls(key)

    def wrap(self, data_key: bytes, allegation_id: str) -> bytes:
        """Encrypt a data key for storage, bound to its allegation."""
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, data_key, allegation_id.encode())

    def unwrap(self, wrapped: bytes, allegation_id: str) -> bytes:
        """Decrypt a stored data key."""
        try:
            return self._aead.decrypt(wrapped[:12], wrapped[12:], allegation_id.encode())
        except InvalidTag:
            raise MasterKeyError(
                f"The data key of allegation {allegation_id} does not decrypt with this master "
                "key: the master key is wrong or the key table was altered."
            ) from None

    def check_value(self) -> bytes:
        """A value stored once so that a wrong master key is noticed at start-up."""
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, _CHECK_PLAINTEXT, b"check")

    def verify(self, check: bytes) -> None:
        """Refuse a master key that is not the one the database was created with."""
        try:
            self._aead.decrypt(check[:12], check[12:], b"check")
        except InvalidTag:
            raise MasterKeyError(
                "The master key does not match the one this database was created with. "
                "Set TRACKER_MASTER_KEY or restore the key file from your backup; refusing "
                "to serve data that cannot be decrypted."
            ) from None


def new_data_key() -> bytes:
    """A fresh random 256-bit data key."""
    return AESGCM.generate_key(bit_length=256)


def _b64(value: str, where: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(
            f"The master key in {where} is not valid base64; it must be 32 random bytes, base64."
        ) from None
