"""The master key and the per-allegation data keys it wraps (crypto-shredding by deletion)."""

from __future__ import annotations

import base64
import binascii
import hmac
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
        self._key = key

    @classmethod
    def generate(cls) -> MasterKey:
        """A fresh random master key."""
        return cls(os.urandom(32))

    @classmethod
    def from_file(cls, path: Path) -> MasterKey:
        """The key held in a key file (base64 of 32 bytes, as in master.key)."""
        try:
            text = path.read_text().strip()
        except OSError as e:
            raise MasterKeyError(f"Cannot read the key file {path}: {e.strerror}.") from None
        return cls(_b64(text, str(path)))

    def encoded(self) -> str:
        """The key as stored in a key file or in TRACKER_MASTER_KEY (base64)."""
        return base64.b64encode(self._key).decode()

    def same_as(self, other: MasterKey) -> bool:
        """True when both hold the same key."""
        return hmac.compare_digest(self._key, other._key)

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
        master = cls.generate()
        master.write(path)  # durable before any data is wrapped by it
        return master

    def write(self, path: Path, *, replace: bool = False) -> None:
        """Store the key in a file, durably and atomically: a temporary file (mode 0600) is
        written and fsynced, then renamed over `path`, then the directory is fsynced. Without
        `replace`, an existing `path` is an error (a key is never overwritten by accident)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and not replace:
            raise MasterKeyError(f"The key file {path} already exists; refusing to overwrite it.")
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, (self.encoded() + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if `path` appeared meanwhile
            finally:
                tmp.unlink()
        fsync_dir(path.parent)

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

    def opens(self, check: bytes) -> bool:
        """True when this is the key that made the check value."""
        try:
            self._aead.decrypt(check[:12], check[12:], b"check")
        except InvalidTag:
            return False
        return True

    def verify(self, check: bytes) -> None:
        """Refuse a master key that is not the one the database was created with."""
        if not self.opens(check):
            raise MasterKeyError(
                "The master key does not match the one this database was created with. "
                "Set TRACKER_MASTER_KEY or restore the key file from your backup (after "
                "`tracker keys rotate`, use the new key); refusing to serve data that cannot "
                "be decrypted."
            )


def new_data_key() -> bytes:
    """A fresh random 256-bit data key."""
    return AESGCM.generate_key(bit_length=256)


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _b64(value: str, where: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(
            f"The master key in {where} is not valid base64; it must be 32 random bytes, base64."
        ) from None
