"""Signed tree heads (C2SP checkpoint bodies, Ed25519), kept beside the log, never in it."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from tracker.audit import merkle
from tracker.audit.log import NodeStore, tree_size
from tracker.domain.errors import TrackerError
from tracker.persistence.db import Cursor, Database


def checkpoint_body(origin: str, size: int, root: bytes) -> bytes:
    """The exact bytes a tree head's signature covers."""
    return f"{origin}\n{size}\n{merkle.b64(root)}\n".encode()


def key_id(public: bytes) -> str:
    """A short, stable name of a public key: hex of the first 8 bytes of its SHA-256."""
    return hashlib.sha256(public).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    """The log's Ed25519 key."""

    private: Ed25519PrivateKey

    @classmethod
    def load(cls, path: Path) -> Signer:
        """Load the key file, generating it (mode 0600) on first run."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption())
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process created it first
            else:
                with os.fdopen(fd, "wb") as f:
                    f.write(pem)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except ValueError:
            raise TrackerError(
                f"The signing key {path} is not a PEM Ed25519 private key; restore it from "
                "backup or point TRACKER_SIGNING_KEY at it.") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise TrackerError(f"The signing key {path} is not an Ed25519 key.")
        return cls(key)

    @property
    def public(self) -> bytes:
        """The raw 32-byte public key."""
        return self.private.public_key().public_bytes(serialization.Encoding.Raw,
                                                      serialization.PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        """This key's id."""
        return key_id(self.public)

    def sign(self, body: bytes) -> bytes:
        """Sign checkpoint bytes."""
        return self.private.sign(body)


def verify_head(head: dict[str, Any], public: bytes) -> None:
    """Raise TrackerError unless the head's signature is valid for this public key."""
    from cryptography.exceptions import InvalidSignature

    try:
        body = checkpoint_body(head["origin"], int(head["tree_size"]),
                               merkle.unb64(head["root_hash"]))
        Ed25519PublicKey.from_public_bytes(public).verify(merkle.unb64(head["signature"]), body)
    except (InvalidSignature, KeyError, ValueError, TypeError):
        raise TrackerError("The tree head's signature does not verify with the log's public "
                           "key: it was not issued by this log (or was altered).") from None


def _row(row: dict[str, Any]) -> dict[str, Any]:
    return {"origin": row["origin"], "tree_size": int(row["tree_size"]),
            "root_hash": merkle.b64(bytes(row["root_hash"])), "timestamp": row["timestamp"],
            "signature": merkle.b64(bytes(row["signature"])), "key_id": row["key_id"]}


class TreeHeads:
    """Issues and lists signed tree heads."""

    def __init__(self, db: Database, signer: Signer, origin: str,
                 settle: Callable[[], object] | None = None) -> None:
        self.db = db
        self.signer = signer
        self.origin = origin
        # Places events whose writer committed but did not live to sequence them (PostgreSQL).
        self.settle = settle

    def public_key(self) -> dict[str, str]:
        """The public key as the API serves it."""
        return {"key_id": self.signer.key_id, "public_key": base64.b64encode(
            self.signer.public).decode()}

    def latest(self) -> dict[str, Any] | None:
        """The largest signed head."""
        with self.db.read() as cur:
            row = cur.execute("SELECT * FROM tree_heads ORDER BY tree_size DESC LIMIT 1"
                              ).fetchone()
        return None if row is None else _row(row)

    def all(self) -> list[dict[str, Any]]:
        """Every signed head, smallest first."""
        with self.db.read() as cur:
            return [_row(r) for r in cur.execute(
                "SELECT * FROM tree_heads ORDER BY tree_size").fetchall()]

    def issue(self) -> dict[str, Any]:
        """Sign the current tree if it grew since the last head; return the latest head."""
        if self.settle is not None:
            self.settle()
        with self.db.read() as cur:
            size = tree_size(cur)
            last = cur.scalar("SELECT MAX(tree_size) FROM tree_heads")
            if last is not None and int(last) >= size:
                latest = self.latest()
                assert latest is not None
                return latest
            root = current_root(cur, size)
        body = checkpoint_body(self.origin, size, root)
        row = (size, root, self.origin, datetime.now(UTC).isoformat(), self.signer.sign(body),
               self.signer.key_id)
        with self.db.tx() as cur:
            cur.execute("INSERT INTO tree_heads (tree_size, root_hash, origin, timestamp,"
                        " signature, key_id) VALUES (?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT (tree_size) DO NOTHING", row)
        latest = self.latest()
        assert latest is not None
        return latest


def current_root(cur: Cursor, size: int) -> bytes:
    """The root hash of the tree of `size` leaves, from stored nodes."""
    return merkle.root(size, NodeStore(cur).get) if size else merkle.EMPTY_ROOT
