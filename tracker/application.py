"""AllegationTracker: one method per command and query, taking and returning plain values."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import Environment

from tracker import policy, presenter
from tracker.audit import merkle
from tracker.domain.allegation import Allegation
from tracker.domain.errors import (
    IdempotencyConflictError,
    NotFoundError,
    StaleVersionError,
    ValidationError,
)
from tracker.domain.values import Actor, Provenance
from tracker.persistence.db import Database, Dialect
from tracker.persistence.write import WriteContext
from tracker.protection.keys import MasterKey, new_data_key
from tracker.protection.keystore import KeyStore
from tracker.protection.sealed import Sealed, SealedAsDict, seal
from tracker.users import Users

_IDEMPOTENCY_NS = uuid.UUID("8c5e1f7e-4a61-4f0e-9d2b-6c1f3e9a7b10")


@dataclass(frozen=True)
class Result:
    """What a write answers: the new state, the log position of its last event, new or not."""

    state: dict[str, Any]
    position: int
    created: bool = True


class AllegationTracker(Application[UUID]):
    """The tracker's application service."""

    name = "AllegationTracker"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Allegation: 50}

    def __init__(self, env: Mapping[str, str], master: MasterKey | None) -> None:
        super().__init__(env)
        dialect: Dialect = ("postgres" if "postgres" in self.env.get("PERSISTENCE_MODULE", "")
                            else "sqlite")
        self.db = Database(self.recorder.datastore, dialect,  # type: ignore[attr-defined]
                           self.recorder.events_table_name)  # type: ignore[attr-defined]
        self.keys = KeyStore(self.db, master)  # type: ignore[arg-type]  # set by bootstrap

    def construct_env(self, name: str, env: Any = None) -> Environment:
        # Configuration comes only from the composition root, never from os.environ; the
        # library's own construct_env is where snapshotting gets switched on, so do it here.
        settings = {**type(self).env, **dict(env or {})}
        if type(self).snapshotting_intervals:
            settings.setdefault("IS_SNAPSHOTTING_ENABLED", "y")
        return Environment(name, settings)

    def register_transcodings(self, transcoder: Any) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(SealedAsDict())

    # ---- commands -------------------------------------------------------------------------

    def submit(self, actor: Actor, report: dict[str, Any], request_id: str,
               idempotency_key: str | None = None) -> Result:
        """Record a new allegation; a retry with the same Idempotency-Key returns the first."""
        policy.require(actor, "submit")
        prov = Provenance.of(actor, request_id, idempotency_key)
        if idempotency_key:
            name = f"{actor.organisation}\x00{actor.id}\x00{idempotency_key}"
            allegation_id = uuid.uuid5(_IDEMPOTENCY_NS, name)
            existing = self._existing_submission(actor, allegation_id, report)
            if existing is not None:
                return existing
        else:
            allegation_id = uuid.uuid4()
        aid = str(allegation_id)
        data_key = new_data_key()
        sealed = self._seal(data_key, aid, report.get("protected"))
        public = {k: v for k, v in report.items() if k != "protected"}
        allegation = Allegation.submit(allegation_id, public, sealed,
                                       _fingerprint(data_key, report), prov)
        write = WriteContext(new_keys={aid: self.keys.master.wrap(data_key, aid)})
        try:
            self.save(allegation, write=write)
        except IntegrityError:
            # Another request with the same key won the race: answer as a retry would be.
            again = self._existing_submission(actor, allegation_id, report)
            if again is None:
                raise
            return again
        return Result(self._state(allegation, actor), write.positions[-1])

    def change_status(self, actor: Actor, allegation_id: str, status: str, reason: str | None,
                      duplicate_of: str | None, request_id: str,
                      expected_version: int | None = None,
                      idempotency_key: str | None = None) -> Result:
        """Move an allegation through the workflow, refusing stale versions."""
        if duplicate_of is not None:
            self._require_exists(actor, duplicate_of, "duplicate_of")
        return self._update(actor, allegation_id, "change_status", request_id, expected_version,
                            idempotency_key,
                            lambda a, p: a.change_status(status, reason, duplicate_of, p))

    def assign(self, actor: Actor, allegation_id: str, assignee: str, request_id: str,
               expected_version: int | None = None,
               idempotency_key: str | None = None) -> Result:
        """Assign the allegation to a reviewer."""
        user = self._reviewer(assignee)
        return self._update(actor, allegation_id, "assign", request_id, expected_version,
                            idempotency_key, lambda a, p: a.assign(user.id, p))

    def comment(self, actor: Actor, allegation_id: str, text: str, request_id: str,
                expected_version: int | None = None,
                idempotency_key: str | None = None) -> Result:
        """Add a comment."""
        return self._update(actor, allegation_id, "comment", request_id, expected_version,
                            idempotency_key, lambda a, p: a.comment(text, p))

    def add_information(self, actor: Actor, allegation_id: str, text: str | None,
                        source: dict[str, Any] | None, protected: dict[str, Any] | None,
                        request_id: str, expected_version: int | None = None,
                        idempotency_key: str | None = None) -> Result:
        """Add information or a corroborating source (monitors: own organisation only)."""

        def command(a: Allegation, p: Provenance) -> None:
            sealed = None
            if protected:
                key = self.keys.data_key(str(a.id))
                sealed = self._seal(key, str(a.id), protected) if key else _ERASED_SENTINEL
            a.add_information(text, source, sealed, p)

        return self._update(actor, allegation_id, "add_information", request_id,
                            expected_version, idempotency_key, command)

    def attach_evidence(self, actor: Actor, allegation_id: str, evidence: dict[str, Any],
                        request_id: str, expected_version: int | None = None,
                        idempotency_key: str | None = None) -> Result:
        """Record a content-addressed evidence file."""
        return self._update(actor, allegation_id, "attach_evidence", request_id,
                            expected_version, idempotency_key,
                            lambda a, p: a.attach_evidence(evidence, p))

    def erase(self, actor: Actor, allegation_id: str, reason: str, request_id: str) -> Result:
        """Crypto-shred the allegation's personal data: record the erasure, destroy the key."""
        write = WriteContext(erase_keys={allegation_id: reason})
        return self._update(actor, allegation_id, "erase", request_id, None, None,
                            lambda a, p: a.erase_personal_data(reason, p), write)

    # ---- queries --------------------------------------------------------------------------

    def get(self, actor: Actor, allegation_id: str, version: int | None = None,
            as_of: datetime | None = None) -> dict[str, Any]:
        """Current state, or the state at a version or as known at a time."""
        current = self._load(actor, allegation_id)
        if as_of is not None:
            version = self._version_as_of(current, as_of)
        if version is not None:
            if version < 1 or version > current.version:
                raise NotFoundError(f"Allegation {allegation_id} has versions 1 to "
                                    f"{current.version}; there is no version {version}.")
            if version != current.version:
                past: Allegation = self.repository.get(current.id, version=version)
                return self._state(past, actor, assignee=current.assignee)
        return self._state(current, actor)

    def history(self, actor: Actor, allegation_id: str) -> list[dict[str, Any]]:
        """Every event of the allegation in order, with its log position and leaf hash."""
        current = self._load(actor, allegation_id)
        policy.require(actor, "history")
        clear = policy.sees_protected(actor, current.assignee)
        with self.db.read() as cur:
            leaves = {r["version"]: r for r in cur.execute(
                "SELECT version, position, leaf_hash FROM audit_leaves WHERE allegation_id = ?",
                (str(current.id),)).fetchall()}
        out = []
        event: Any
        for event in self.events.get(current.id):
            leaf = leaves[event.originator_version]
            out.append({
                "position": leaf["position"],
                "type": presenter.event_type(type(event).TOPIC),
                "version": event.originator_version,
                "recorded_at": event.timestamp.isoformat(),
                **presenter.provenance(event),
                "data": presenter.event_data(event, clear, self.keys.data_key),
                "leaf_hash": merkle.b64(bytes(leaf["leaf_hash"])),
            })
        return out

    # ---- helpers --------------------------------------------------------------------------

    def _update(self, actor: Actor, allegation_id: str, action: str, request_id: str,
                expected_version: int | None, idempotency_key: str | None,
                command: Callable[[Allegation, Provenance], None],
                write: WriteContext | None = None) -> Result:
        prov = Provenance.of(actor, request_id, idempotency_key)
        for _attempt in range(3):
            allegation = self._load(actor, allegation_id)
            policy.require(actor, action)
            if idempotency_key:
                seen = allegation.idempotency_keys.get(f"{actor.id}|{idempotency_key}")
                if seen is not None:
                    return Result(self._state(allegation, actor), self._position(allegation.id,
                                                                                 seen), False)
            if expected_version is not None and expected_version != allegation.version:
                raise self._stale(allegation, expected_version)
            command(allegation, prov)
            ctx = write or WriteContext()
            try:
                self.save(allegation, write=ctx)
            except IntegrityError:
                if expected_version is not None:
                    raise self._stale(self._load(actor, allegation_id), expected_version) from None
                continue  # no version given: re-run the command on the fresh state
            return Result(self._state(allegation, actor), ctx.positions[-1])
        raise StaleVersionError(-1, -1)  # pragma: no cover - three lost races in a row

    def _load(self, actor: Actor, allegation_id: str) -> Allegation:
        try:
            uid = UUID(allegation_id)
        except (ValueError, TypeError):
            raise NotFoundError(f"No allegation {allegation_id!r} is visible to you.") from None
        try:
            allegation: Allegation = self.repository.get(uid)
        except AggregateNotFoundError:
            raise NotFoundError(f"No allegation {allegation_id} is visible to you.") from None
        policy.require_visible(actor, allegation.organisation, allegation_id)
        return allegation

    def _require_exists(self, actor: Actor, allegation_id: str, field: str) -> None:
        try:
            self._load(actor, allegation_id)
        except NotFoundError:
            raise ValidationError({field: [f"No allegation {allegation_id!r} exists."]}) from None

    def _reviewer(self, user_id: str) -> Actor:
        try:
            user = Users(self.db).get(user_id)
        except NotFoundError:
            raise ValidationError({"assignee": [f"No active user {user_id!r}."]}) from None
        if user.role != "reviewer":
            raise ValidationError({"assignee": [f"User {user_id!r} is a {user.role}, "
                                                "not a reviewer."]})
        return user

    def _existing_submission(self, actor: Actor, allegation_id: UUID, report: dict[str, Any]
                             ) -> Result | None:
        try:
            existing: Allegation = self.repository.get(allegation_id)
        except AggregateNotFoundError:
            return None
        key = self.keys.data_key(str(allegation_id))
        if key is None or not hmac.compare_digest(existing.fingerprint,
                                                  _fingerprint(key, report)):
            raise IdempotencyConflictError(
                "This Idempotency-Key was already used for a different request body. "
                "Use a new key for a new allegation, or resend exactly the same body.")
        return Result(self._state(existing, actor), self._position(allegation_id, 1), False)

    def _seal(self, key: bytes, aid: str, protected: dict[str, Any] | None) -> Sealed | None:
        cleaned = {k: v for k, v in (protected or {}).items() if v not in (None, [], "")}
        return seal(key, aid, cleaned) if cleaned else None

    def _state(self, a: Allegation, actor: Actor, assignee: str | None = None
               ) -> dict[str, Any]:
        clear = policy.sees_protected(actor, assignee if assignee is not None else a.assignee)
        return presenter.state(a, clear, self.keys.data_key)

    def _position(self, uid: UUID, version: int) -> int:
        with self.db.read() as cur:
            value = cur.scalar("SELECT position FROM audit_leaves WHERE allegation_id = ?"
                               " AND version = ?", (str(uid), version))
        return int(value)

    def _version_as_of(self, a: Allegation, as_of: datetime) -> int:
        moment = as_of.astimezone(UTC).isoformat()
        with self.db.read() as cur:
            value = cur.scalar("SELECT MAX(version) FROM audit_leaves WHERE allegation_id = ?"
                               " AND recorded_at <= ?", (str(a.id), moment))
        if value is None:
            raise NotFoundError(f"Allegation {a.id} was not yet known at {moment}.")
        return int(value)

    def _stale(self, a: Allegation, expected: int) -> StaleVersionError:
        last: Any = list(self.events.get(a.id, gt=a.version - 1))[-1]
        return StaleVersionError(expected, a.version, changed_by=last.actor,
                                 changed_at=last.timestamp.isoformat())


# Marks "personal data given after erasure" so the aggregate refuses it with its own error.
_ERASED_SENTINEL = Sealed((), b"", b"")


def _fingerprint(key: bytes, report: dict[str, Any]) -> str:
    # Keyed by the allegation's data key, so the fingerprint of personal data dies with it.
    body = json.dumps(report, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hmac.new(key, body, hashlib.sha256).hexdigest()

