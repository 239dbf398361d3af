"""The composition root: build every service from one explicit configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracker.application import AllegationTracker
from tracker.audit.heads import Signer, TreeHeads
from tracker.config import Config
from tracker.notifications import schema as notification_schema
from tracker.persistence import schema
from tracker.persistence.db import schema_lock
from tracker.protection.rotation import open_keystore
from tracker.users import Users

# Extra DDL of other parts of the tracker (the views create theirs, per dialect, themselves).
EXTRA_DDL: list[str] = [notification_schema.DDL]


@dataclass
class Tracker:
    """Everything a process needs, built once per process (after fork)."""

    config: Config
    app: AllegationTracker
    users: Users
    heads: TreeHeads

    def close(self) -> None:
        """Release database connections."""
        self.app.close()


def build(config: Config) -> Tracker:
    """Build the services, creating the schema and the master key on first run."""
    app = AllegationTracker(config.eventsourcing_env(), master=None)
    with schema_lock(app.db):
        recorders: list[Any] = [app.recorder]
        if app.snapshots is not None:
            recorders.append(app.snapshots.recorder)
        for recorder in recorders:
            recorder.create_table()
        with app.db.tx() as cur:
            schema.create(cur)
            for ddl in EXTRA_DDL:
                schema.create(cur, ddl)
    # Also finishes a master-key rotation interrupted after its commit (tracker keys rotate).
    app.keys = open_keystore(app.db, config.master_key, config.data_dir / "master.key")
    signer = Signer.load(config.signing_key_path or config.data_dir / "signing.key")
    heads = TreeHeads(app.db, signer, config.log_origin, app.settle)
    return Tracker(config=config, app=app, users=Users(app.db), heads=heads)
