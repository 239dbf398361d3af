"""Users, roles and bearer tokens (random, shown once, stored only as a SHA-256 hash)."""

from __future__ import annotations

import builtins
import hashlib
import secrets
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from tracker.domain.errors import NotFoundError, ValidationError
from tracker.domain.values import ROLES, Actor
from tracker.persistence.db import Database

TOKEN_PREFIX = "trk_"  # noqa: S105 - a prefix, not a secret


def token_hash(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Users:
    """The user directory."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, name: str, role: str, organisation: str) -> tuple[Actor, str]:
        """Create a user with a first token; the token is returned once and never stored."""
        problems: dict[str, list[str]] = {}
        if role not in ROLES:
            problems["role"] = [f"Unknown role {role!r}; one of: {', '.join(ROLES)}."]
        if not name.strip():
            problems["name"] = ["Must not be empty."]
        if not organisation.strip():
            problems["organisation"] = ["Must not be empty."]
        if problems:
            raise ValidationError(problems)
        user = Actor(uuid.uuid4().hex[:16], name.strip(), role, organisation.strip())
        with self.db.tx() as cur:
            cur.execute("INSERT INTO users (id, name, role, organisation, created_at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (user.id, user.name, user.role, user.organisation, _now()))
        return user, self.issue_token(user.id)

    def issue_token(self, user_id: str) -> str:
        """A new token for an existing user (≥ 256 random bits)."""
        self.get(user_id)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        digest = token_hash(token)
        with self.db.tx() as cur:
            cur.execute("INSERT INTO tokens (id, hash, user_id, created_at) VALUES (?, ?, ?, ?)",
                        (digest[:12], digest, user_id, _now()))
        return token

    def authenticate(self, token: str) -> Actor | None:
        """The active user holding this token, or None."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        with self.db.read() as cur:
            row = cur.execute(
                "SELECT u.id, u.name, u.role, u.organisation FROM tokens t"
                " JOIN users u ON u.id = t.user_id WHERE t.hash = ?"
                " AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
                (token_hash(token),)).fetchone()
        return None if row is None else Actor(**row)

    def get(self, user_id: str) -> Actor:
        """An active user by id."""
        with self.db.read() as cur:
            row = cur.execute("SELECT id, name, role, organisation FROM users"
                              " WHERE id = ? AND disabled_at IS NULL", (user_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"No active user with id {user_id!r}.")
        return Actor(**row)

    def list(self, role: str | None = None) -> list[dict[str, Any]]:
        """Active users, optionally of one role."""
        sql = "SELECT id, name, role, organisation FROM users WHERE disabled_at IS NULL"
        params: tuple[Any, ...] = ()
        if role:
            sql += " AND role = ?"
            params = (role,)
        with self.db.read() as cur:
            rows: list[dict[str, Any]] = cur.execute(sql + " ORDER BY name, id", params).fetchall()
        return rows

    def tokens(self, user_id: str) -> builtins.list[dict[str, Any]]:
        """The user's tokens (ids and dates, never the secret)."""
        with self.db.read() as cur:
            rows: list[dict[str, Any]] = cur.execute(
                "SELECT id, created_at, revoked_at FROM tokens WHERE user_id = ?"
                " ORDER BY created_at", (user_id,)).fetchall()
        return rows

    def revoke(self, user_or_token_id: str) -> int:
        """Revoke one token (by token id) or every token of a user (by user id); returns count."""
        now = _now()
        with self.db.tx() as cur:
            cur.execute("UPDATE tokens SET revoked_at = ? WHERE revoked_at IS NULL"
                        " AND (id = ? OR user_id = ?)", (now, user_or_token_id, user_or_token_id))
            count = cur.rowcount
        if count == 0:
            raise NotFoundError(f"No active token or user with id {user_or_token_id!r}.")
        return count

    def disable(self, user_id: str) -> None:
        """Disable a user and revoke all their tokens."""
        self.get(user_id)
        with self.db.tx() as cur:
            cur.execute("UPDATE users SET disabled_at = ? WHERE id = ?", (_now(), user_id))
            cur.execute("UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
                        (_now(), user_id))


def as_dict(actor: Actor) -> dict[str, Any]:
    """A user as plain values."""
    return asdict(actor)
