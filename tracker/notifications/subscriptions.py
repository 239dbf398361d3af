"""Subscriptions: a reviewer's (or monitor's) webhook or e-mail, with filters, stored wrapped."""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tracker.audit.log import tree_size
from tracker.domain.errors import NotFoundError, PermissionDeniedError, ValidationError
from tracker.domain.values import Actor
from tracker.notifications import rules, schema, targets
from tracker.persistence.db import Cursor, Database
from tracker.protection.keys import MasterKey

MIN_SECRET, MAX_SECRET = 16, 256


def now() -> str:
    """The current UTC time, ISO 8601 with microseconds (so strings sort as times)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Record:
    """A stored subscription, with its secret in clear (for the worker only, never shown)."""

    id: str
    owner: str
    channel: str
    target: str
    secret: str | None
    filters: dict[str, list[str]]
    created_at: str
    deleted_at: str | None
    owner_active: bool = True

    def public(self) -> dict[str, Any]:
        """What the API shows: never the secret."""
        out: dict[str, Any] = {"id": self.id, "channel": self.channel,
                               **self.filters, "created_at": self.created_at}
        out["url" if self.channel == "webhook" else "address"] = self.target
        return out


class Subscriptions:
    """Create, list, read and delete subscriptions; the relay reads the live ones."""

    def __init__(self, db: Database, master: MasterKey, deny_private: bool = False) -> None:
        self.db = db
        self.master = master
        self.deny_private = deny_private
        schema.ensure(db)

    def create(self, owner: Actor, spec: dict[str, Any]) -> tuple[Record, str | None]:
        """Store a subscription; returns it and the secret when the server generated one."""
        if owner.role not in rules.SUBSCRIBER_ROLES:
            raise PermissionDeniedError(
                f"The role '{owner.role}' may not subscribe to notifications; this needs one "
                f"of: {', '.join(rules.SUBSCRIBER_ROLES)}.")
        channel = spec.get("channel")
        filters = _filters(spec)
        generated = None
        if channel == "webhook":
            target = targets.check_url(spec.get("url") or "", self.deny_private)
            secret = spec.get("secret")
            if secret is None:
                secret = generated = secrets.token_urlsafe(32)
            elif not MIN_SECRET <= len(secret) <= MAX_SECRET:
                raise ValidationError({"secret": [
                    f"Give {MIN_SECRET} to {MAX_SECRET} characters, or omit it and the "
                    "server generates one (shown once)."]})
        elif channel == "email":
            target, secret = targets.check_address(spec.get("address") or ""), None
        else:
            raise ValidationError({"channel": [f"One of: {', '.join(rules.CHANNELS)}."]})
        sid = str(uuid.uuid4())
        wrapped = self.master.wrap(secret.encode(), _aad(sid)) if secret else None
        created = now()
        with self.db.tx() as cur:
            position = tree_size(cur)
            cur.execute(
                "INSERT INTO notification_subscriptions (id, owner, channel, target, secret,"
                " filters, created_at, created_position) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (sid, owner.id, channel, target, wrapped, json.dumps(filters), created,
                 position))
        return Record(sid, owner.id, channel, target, secret, filters, created, None), generated

    def of_owner(self, owner_id: str) -> list[Record]:
        """The owner's subscriptions that are not deleted, oldest first."""
        with self.db.read() as cur:
            rows = cur.execute(
                "SELECT * FROM notification_subscriptions WHERE owner = ? AND deleted_at IS NULL"
                " ORDER BY created_at, id", (owner_id,)).fetchall()
        return [self._record(r, with_secret=False) for r in rows]

    def get(self, subscription_id: str, owner_id: str | None = None,
            include_deleted: bool = False, cur: Cursor | None = None) -> Record:
        """One subscription (of `owner_id` when given), with its secret."""
        sql = ("SELECT s.*, u.disabled_at AS owner_disabled_at FROM notification_subscriptions s"
               " LEFT JOIN users u ON u.id = s.owner WHERE s.id = ?")
        if cur is None:
            with self.db.read() as own:
                row = own.execute(sql, (subscription_id,)).fetchone()
        else:
            row = cur.execute(sql, (subscription_id,)).fetchone()
        if (row is None or (owner_id is not None and row["owner"] != owner_id)
                or (row["deleted_at"] is not None and not include_deleted)):
            raise NotFoundError(f"You have no subscription {subscription_id!r}; list yours "
                                "with GET /v1/subscriptions.")
        return self._record(row, with_secret=True)

    def delete(self, subscription_id: str, owner_id: str) -> None:
        """Stop a subscription: no event recorded from now on reaches it."""
        self.get(subscription_id, owner_id)
        with self.db.tx() as cur:
            cur.execute("UPDATE notification_subscriptions SET deleted_at = ?,"
                        " deleted_position = ? WHERE id = ? AND deleted_at IS NULL",
                        (now(), tree_size(cur), subscription_id))

    def for_rules(self, cur: Cursor) -> list[rules.Subscription]:
        """Every subscription the rules may pick (deleted ones too, for their past events)."""
        rows = cur.execute(
            "SELECT s.id, s.owner, s.channel, s.filters, s.created_position, s.deleted_position,"
            " u.role, u.organisation FROM notification_subscriptions s"
            " JOIN users u ON u.id = s.owner WHERE u.disabled_at IS NULL"
            " ORDER BY s.created_position, s.id").fetchall()
        out = []
        for r in rows:
            f = json.loads(r["filters"])
            out.append(rules.Subscription(
                id=r["id"], owner=r["owner"], role=r["role"], organisation=r["organisation"],
                channel=r["channel"], categories=frozenset(f.get("categories") or ()),
                countries=frozenset(f.get("countries") or ()),
                event_types=frozenset(f.get("event_types") or ()),
                created_position=int(r["created_position"]),
                deleted_position=(None if r["deleted_position"] is None
                                  else int(r["deleted_position"]))))
        return out

    def _record(self, row: dict[str, Any], with_secret: bool) -> Record:
        secret = None
        if with_secret and row["secret"] is not None:
            secret = self.master.unwrap(bytes(row["secret"]), _aad(row["id"])).decode()
        return Record(row["id"], row["owner"], row["channel"], row["target"], secret,
                      json.loads(row["filters"]), row["created_at"], row["deleted_at"],
                      "owner_disabled_at" not in row or row["owner_disabled_at"] is None)


def _aad(subscription_id: str) -> str:
    # Binds the wrapped secret to its subscription (a copied blob does not decrypt elsewhere).
    return f"subscription-secret:{subscription_id}"


def _filters(spec: dict[str, Any]) -> dict[str, list[str]]:
    filters = {name: sorted(set(spec.get(name) or ()))
               for name in ("categories", "countries", "event_types")}
    unknown = sorted(set(filters["event_types"]) - set(rules.EVENT_TYPES))
    if unknown:
        raise ValidationError({"event_types": [
            f"Unknown event type(s): {', '.join(unknown)}; one of: "
            f"{', '.join(rules.EVENT_TYPES)}."]})
    return filters
