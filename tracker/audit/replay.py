"""Point-in-time replay: every allegation as the tracker knew it at a time or log position."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from tracker import presenter
from tracker.application import AllegationTracker
from tracker.domain.allegation import Allegation


def versions_as_of(app: AllegationTracker, moment: datetime | int) -> list[tuple[str, int]]:
    """(allegation id, version) of every allegation known at a time or up to a position."""
    if isinstance(moment, int):
        where, param = "position <= ?", moment
    else:
        where, param = "recorded_at <= ?", moment.astimezone(UTC).isoformat()  # type: ignore[assignment]
    with app.db.read() as cur:
        rows = cur.execute(f"SELECT allegation_id, MAX(version) AS version FROM audit_leaves"
                           f" WHERE {where} GROUP BY allegation_id ORDER BY allegation_id",
                           (param,)).fetchall()
    return [(r["allegation_id"], int(r["version"])) for r in rows]


def replay(app: AllegationTracker, moment: datetime | int) -> Iterator[dict[str, Any]]:
    """The states, personal data redacted (an auditor's view)."""
    for allegation_id, version in versions_as_of(app, moment):
        allegation: Allegation = app.repository.get(UUID(allegation_id), version=version)
        yield presenter.state(allegation, False, app.keys.data_key)
