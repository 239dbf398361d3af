"""Per-allegation data keys in the database, wrapped by the master key."""

from __future__ import annotations

from tracker.persistence.db import Database
from tracker.protection.keys import MasterKey

_CHECK = "master_key_check"


class KeyStore:
    """Looks up and unwraps data keys; a destroyed key reads as None, for ever."""

    def __init__(self, db: Database, master: MasterKey) -> None:
        self.db = db
        self.master = master

    def data_key(self, allegation_id: str) -> bytes | None:
        """The allegation's data key, or None when erased (or never created)."""
        with self.db.read() as cur:
            wrapped = cur.scalar("SELECT wrapped FROM data_keys WHERE allegation_id = ?",
                                 (allegation_id,))
        return None if wrapped is None else self.master.unwrap(bytes(wrapped), allegation_id)

    def check_master_key(self) -> None:
        """Store a check value on first use; afterwards refuse a different master key."""
        with self.db.tx() as cur:
            check = cur.scalar("SELECT value FROM meta WHERE name = ?", (_CHECK,))
            if check is None:
                cur.execute("INSERT INTO meta (name, value) VALUES (?, ?)",
                            (_CHECK, self.master.check_value()))
                return
        self.master.verify(bytes(check))


def database_has_keys(db: Database) -> bool:
    """True when the database already holds a master-key check (so a new key is wrong)."""
    with db.read() as cur:
        return bool(cur.scalar("SELECT COUNT(*) FROM meta WHERE name = ?", (_CHECK,)))
