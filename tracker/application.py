"""AllegationTracker: one method per command and query, taking and returning plain values."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import Environment

from tracker import policy, presenter
from tracker.audit import merkle
from tracker.audit.log import leaves_of, records_of, stored_event
from tracker.domain.allegation import Allegation
from tracker.domain.errors import (
    BusyError,
    IdempotencyConflictError,
    NotFoundError,
    StaleVersionError,
    ValidationError,
)
from tracker.domain.values import Actor, Provenance
from tracker.persistence.db import Database, Dialect, meta_secret
from tracker.persistence.write import WriteContext
from tracker.presenter import ENTRY_KINDS, Page
from tracker.projections.cursor import CursorCodec
from tracker.protection.erasure import scrub_erased_keys
from tracker.protection.keys import MasterKey, new_data_key
from tracker.protection.keystore import KeyStore
from tracker.protection.sealed import Sealed, SealedAsDict, seal
from tracker.users import Users

# A change without an expected version that loses the race to other writers is re-run on the
# fresh state, after a short random wait, this many times in all.
_ATTEMPTS = 10
_IDEMPOTENCY_NS = uuid.UUID("8c5e1f7e-4a61-4f0e-9d2b-6c1f3e9a7b10")

# How many of the latest comments, pieces of information and evidence records a state shows;
# the rest are read in pages (`AllegationTracker.entries`).
RECENT_ENTRIES = 20
MAX_ENTRIES_PAGE = 200
_ENTRY_TOPICS = {"comments": Allegation.Commented.TOPIC,
                 "information": Allegation.InformationAdded.TOPIC,
                 "evidence": Allegation.EvidenceAttached.TOPIC}
_BAD_CURSOR = ["Malformed or altered cursor, or one of another list: use `next_cursor` exactly "
               "as received from this list, or start again without `cursor`."]


def _project(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's `project_aggregate` without its `assert isinstance(event, <Protocol>)`.

    A runtime-checkable Protocol check walks the protocol's members on every call: about
    25 us per event, most of the cost of replaying the events after a snapshot.
    """
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


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
    snapshotting_projectors: ClassVar[dict[type[Any], Any]] = {Allegation: _project}

    def __init__(self, env: Mapping[str, str], master: MasterKey | None) -> None:
        super().__init__(env)
        dialect: Dialect = ("postgres" if "postgres" in self.env.get("PERSISTENCE_MODULE", "")
                            else "sqlite")
        self.db = Database(self.recorder.datastore, dialect,  # type: ignore[attr-defined]
                           self.recorder.events_table_name)  # type: ignore[attr-defined]
        self.keys = KeyStore(self.db, master)  # type: ignore[arg-type]  # set by bootstrap
        self._entry_codec: CursorCodec | None = None

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
        # Wrapped with the loaded key; the transaction itself refuses it if a rotation has
        # moved the database to another master key meanwhile (one check, in the same commit).
        write = WriteContext(new_keys={aid: self.keys.loaded.wrap(data_key, aid)},
                             master_check=self.keys.expected_check)
        try:
            self.save(allegation, write=write)
        except IntegrityError:
            # Another request with the same key won the race: answer as a retry would be.
            again = self._existing_submission(actor, allegation_id, report)
            if again is None:
                raise
            return again
        return Result(self._state(allegation, actor, data_key=data_key), write.positions[-1])

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
        result = self._update(actor, allegation_id, "erase", request_id, None, None,
                              lambda a, p: a.erase_personal_data(reason, p), write)
        scrub_erased_keys(self.db)  # the database's own leftover copies of the wrapped key
        return result

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
                past = self._aggregate(current.id, version)
                return self._state(past, actor, current)
        return self._state(current, actor)

    def entries(self, actor: Actor, allegation_id: str, kind: str,
                limit: int = RECENT_ENTRIES, cursor: str | None = None) -> Page:
        """A page of the allegation's comments, information or evidence, newest first."""
        if kind not in _ENTRY_TOPICS:
            raise ValueError(f"unknown kind of entry {kind!r}")
        if not 1 <= limit <= MAX_ENTRIES_PAGE:
            raise ValidationError({"limit": [f"Must be between 1 and {MAX_ENTRIES_PAGE}."]})
        current = self._load(actor, allegation_id)
        policy.require(actor, "read")
        before = None if cursor is None else self._cursor_version(kind, current, cursor)
        return self._entries(current, kind, limit, before)

    def settle(self) -> None:
        """Give positions to committed events still waiting for one (PostgreSQL: a writer
        that died between its commit and the sequencer); nothing to do on SQLite."""
        sequence = getattr(self.recorder, "sequence", None)
        if sequence is not None:
            sequence()

    def history(self, actor: Actor, allegation_id: str) -> list[dict[str, Any]]:
        """Every event of the allegation in order, with its log position and leaf hash."""
        current = self._load(actor, allegation_id)
        policy.require(actor, "history")
        clear = policy.sees_protected(actor, current.assignee)
        leaves = self._leaves(current.id)
        if len(leaves) < current.version:  # a writer died before its events got positions
            self.settle()
            leaves = self._leaves(current.id)
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
        for attempt in range(_ATTEMPTS):
            if attempt:  # lost a race: let the other writers through, then re-run
                time.sleep(random.uniform(0, min(0.2, 0.005 * 2 ** attempt)))
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
        raise BusyError(_ATTEMPTS)

    def _aggregate(self, uid: UUID, version: int | None = None) -> Allegation:
        allegation: Allegation = self.repository.get(uid, version=version,
                                                     projector_func=_project)
        return allegation

    def _load(self, actor: Actor, allegation_id: str) -> Allegation:
        try:
            uid = UUID(allegation_id)
        except (ValueError, TypeError):
            raise NotFoundError(f"No allegation {allegation_id!r} is visible to you.") from None
        try:
            allegation = self._aggregate(uid)
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
            existing = self._aggregate(allegation_id)
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

    def _state(self, a: Allegation, actor: Actor, current: Allegation | None = None,
               data_key: bytes | None = None) -> dict[str, Any]:
        """`a` as `actor` may see it; `current`: the latest version, when `a` is an earlier one
        (its assignee decides who sees personal data, its erasure masks it for ever);
        `data_key`: the allegation's key when the caller holds it (a submission)."""
        now = current or a
        clear = policy.sees_protected(actor, now.assignee)
        recent = {kind: self._entries(a, kind, RECENT_ENTRIES) for kind in ENTRY_KINDS}
        key_of = self.keys.data_key if data_key is None else lambda _aid: data_key
        return presenter.state(a, clear, key_of, recent, erased=now.erased)

    def _entries(self, a: Allegation, kind: str, limit: int, before: int | None = None
                 ) -> Page:
        """Entries of a kind up to `a`'s version (and below `before`), newest first.

        From the event log, whose events keep the entries' content (only events with a
        position count).
        """
        if not getattr(a, f"{kind}_total"):
            return Page([])
        bound = a.version if before is None else min(a.version, before - 1)
        with self.db.read() as cur:
            rows = records_of(cur, self.db, a.id, _ENTRY_TOPICS[kind], bound, limit + 1)
        items = []
        for row in rows[:limit]:
            event = self.mapper.to_domain_event(
                stored_event(a.id, row["version"], row["topic"], row["state"]))
            items.append(presenter.entry(event, int(row["position"]), a.sources))
        more = len(rows) > limit
        return Page(items, self._entry_cursor(kind, a, items[-1]["version"]) if more else None)

    @property
    def entry_codec(self) -> CursorCodec:
        """Signs the cursors of the entry pages (its key is read from the database once)."""
        if self._entry_codec is None:
            self._entry_codec = CursorCodec(meta_secret(self.db, "entries_cursor_key"))
        return self._entry_codec

    def _entry_cursor(self, kind: str, a: Allegation, version: int) -> str:
        # Bound to its list: a cursor of another allegation's, or another kind's, is refused.
        return self.entry_codec.encode([kind, str(a.id), str(version)])

    def _cursor_version(self, kind: str, a: Allegation, cursor: str) -> int:
        try:
            got_kind, got_id, version = self.entry_codec.decode(cursor, arity=3)
        except ValidationError:
            raise ValidationError({"cursor": _BAD_CURSOR}) from None
        if got_kind != kind or got_id != str(a.id) or not version.isdigit():
            raise ValidationError({"cursor": _BAD_CURSOR})
        # base64 leaves spare bits in a last character: only the very string we made passes.
        if not hmac.compare_digest(self._entry_cursor(kind, a, int(version)), cursor):
            raise ValidationError({"cursor": _BAD_CURSOR})
        return int(version)

    def _leaves(self, uid: UUID) -> dict[int, dict[str, Any]]:
        with self.db.read() as cur:
            return {int(r["version"]): r for r in leaves_of(cur, self.db.events_table, uid)}

    def _position(self, uid: UUID, version: int) -> int:
        for attempt in range(2):
            leaf = self._leaves(uid).get(version)
            if leaf is not None:
                return int(leaf["position"])
            if attempt == 0:  # a writer died before its events got positions
                self.settle()
        raise LookupError(f"version {version} of {uid} has no position in the audit log")

    def _version_as_of(self, a: Allegation, as_of: datetime) -> int:
        moment = as_of.astimezone(UTC).isoformat()
        known = [v for v, leaf in self._leaves(a.id).items() if leaf["recorded_at"] <= moment]
        if not known:
            raise NotFoundError(f"Allegation {a.id} was not yet known at {moment}.")
        return max(known)

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

