"""Per-allegation data keys in the database, wrapped by the master key."""

from __future__ import annotations

from tracker.domain.errors import MasterKeyError
from tracker.persistence.db import Cursor, Database
from tracker.protection.keys import MasterKey

_CHECK = "master_key_check"

_ROTATED = ("The master key was rotated (`tracker keys rotate`) while this process was running; "
            "restart it so that it loads the new key.")


class KeyStore:
    """Looks up and unwraps data keys; a destroyed key reads as None, for ever."""

    def __init__(self, db: Database, master: MasterKey) -> None:
        self.db = db
        self._master = master
        self._check: bytes | None = None  # the check value this process verified

    @property
    def master(self) -> MasterKey:
        """The master key, for wrapping new secrets: refused (MasterKeyError) when the database
        is no longer wrapped by it, so a process that outlived a rotation never wraps a new data
        key with the retired key."""
        if self._check is not None:
            with self.db.read() as cur:
                check = stored_check(cur)
            if check != self._check:
                if check is None or not self._master.opens(check):
                    raise MasterKeyError(_ROTATED)
                self._check = check
        return self._master

    @property
    def expected_check(self) -> bytes | None:
        """The check value of the key this process wraps with (None before the first check)."""
        return self._check

    @property
    def loaded(self) -> MasterKey:
        """The master key this process loaded, without the rotation check (for checks)."""
        return self._master

    def use(self, master: MasterKey) -> None:
        """Switch to another master key (after a rotation) and verify it against the database."""
        self._master, self._check = master, None
        self.check_master_key()

    def data_key(self, allegation_id: str) -> bytes | None:
        """The allegation's data key, or None when erased (or never created)."""
        with self.db.read() as cur:
            wrapped = cur.scalar("SELECT wrapped FROM data_keys WHERE allegation_id = ?",
                                 (allegation_id,))
        if wrapped is None:
            return None
        try:
            return self._master.unwrap(bytes(wrapped), allegation_id)
        except MasterKeyError:
            self.master  # noqa: B018  # a clearer message when the key was rotated meanwhile
            raise

    def check_master_key(self) -> None:
        """Store a check value on first use; afterwards refuse a different master key."""
        with self.db.tx() as cur:
            check = stored_check(cur)
            if check is None:
                check = self._master.check_value()
                cur.execute("INSERT INTO meta (name, value) VALUES (?, ?)", (_CHECK, check))
                self._check = check
                return
        self._master.verify(check)
        self._check = check


def stored_check(cur: Cursor) -> bytes | None:
    """The master-key check value stored in the database, if any."""
    value = cur.scalar("SELECT value FROM meta WHERE name = ?", (_CHECK,))
    return None if value is None else bytes(value)


def require_check(cur: Cursor, expected: bytes) -> None:
    """Inside a transaction that wrote keys wrapped by the key of `expected`: refuse (roll
    back) when the database is now under another master key. Run after the key's insert, so
    that on PostgreSQL it waits for a rotation holding the table and then sees its result."""
    if stored_check(cur) != expected:
        raise MasterKeyError(_ROTATED)


def queue_check(cur: Cursor, expected: bytes) -> None:
    """`require_check` for a pipelined PostgreSQL write: the refusal as a statement queued in
    the write's own pipeline (`tracker_refuse` raises with the message, which rolls the
    transaction back), answered with the rest of the pipeline."""
    cur.execute("SELECT tracker_refuse(?) WHERE (SELECT value FROM meta WHERE name = ?)"
                " IS DISTINCT FROM ?", (_ROTATED, _CHECK, expected))


def refused_as_rotated(error: BaseException) -> bool:
    """Whether a database error is that statement's refusal."""
    diag = getattr(error, "diag", None)
    return getattr(diag, "message_primary", None) == _ROTATED


def database_has_keys(db: Database) -> bool:
    """True when the database already holds a master-key check (so a new key is wrong)."""
    with db.read() as cur:
        return stored_check(cur) is not None
