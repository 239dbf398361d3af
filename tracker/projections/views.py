"""The read side for one process: list, statistics, queue and position, with the cursor key."""

from __future__ import annotations

from typing import Any

from tracker.audit.log import tree_size
from tracker.domain.values import Actor
from tracker.persistence.db import Database
from tracker.projections import listing, schema
from tracker.projections import stats as stats_query
from tracker.projections.cursor import CursorCodec, cursor_secret
from tracker.projections.filters import Filters
from tracker.projections.tracking import current_position, wait_for_position


class Views:
    """Queries of the projections; build one per process (after fork), like the services."""

    def __init__(self, db: Database) -> None:
        schema.ensure(db)  # the views answer (empty) before the projector first runs
        self.db = db
        self._codec: CursorCodec | None = None

    @property
    def codec(self) -> CursorCodec:
        """The cursor codec (its key is read from the database once)."""
        if self._codec is None:
            self._codec = CursorCodec(cursor_secret(self.db))
        return self._codec

    def list_page(self, actor: Actor, filters: Filters, limit: int = listing.DEFAULT_LIMIT,
             cursor: str | None = None) -> listing.Page:
        """A page of the allegation list, newest first."""
        return listing.list_allegations(self.db, actor, filters, self.codec, limit, cursor)

    def stats(self, actor: Actor, filters: Filters,
              group_by: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        """Counts grouped by the dimensions, at one views position."""
        return stats_query.stats(self.db, actor, filters, group_by)

    def queue(self, reviewer: Actor, limit: int = listing.DEFAULT_LIMIT) -> list[dict[str, Any]]:
        """The reviewer's queue: assigned to them, awaiting review, longest untouched first."""
        return listing.reviewer_queue(self.db, reviewer, limit)

    def position(self) -> int:
        """The last log position the views include (-1: none)."""
        return current_position(self.db)

    def log_size(self) -> int:
        """How many events the log holds (positions 0 .. size-1)."""
        with self.db.read() as cur:
            return tree_size(cur)

    def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until the views include `position`; False after `timeout` seconds."""
        return wait_for_position(self.db, position, timeout)
