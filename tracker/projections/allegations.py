"""The allegation list view: one row per allegation, a handler per event type.

Personal data never enters the view: the `protected` (Sealed) fields of events are ignored.
For an incident dated by a range, `incident_date` is `date_from` (filters and months use it);
an incident known only to the year has no `incident_month`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from tracker.domain.allegation import Allegation
from tracker.domain.errors import TrackerError
from tracker.persistence.db import Cursor
from tracker.projections import search
from tracker.projections.feed import Entry

COLUMNS = (
    "id", "seq", "organisation", "status", "summary", "categories", "perpetrators", "country",
    "admin1", "place", "incident_date", "incident_date_to", "incident_precision",
    "incident_month", "victims", "children", "assignee", "duplicate_of", "erased", "sources",
    "information", "evidence", "comments", "version", "submitted_at", "updated_at", "position",
)
# What later events change; the rest is fixed at submission.
MUTABLE = ("status", "assignee", "duplicate_of", "erased", "sources", "information", "evidence",
           "comments", "version", "updated_at", "position")


class ProjectionError(TrackerError):
    """The log and the views disagree (e.g. an event out of sequence); rebuild the views."""

    title = "Projection inconsistent"


def incident_fields(incident: dict[str, Any]) -> dict[str, Any]:
    """Date, range end, precision and month of an incident, as the view stores them."""
    location = incident.get("location") or {}
    if incident.get("date"):
        date, date_to, precision = incident["date"], None, incident.get("date_precision")
    else:
        date, date_to = incident.get("date_from"), incident.get("date_to")
        precision = "range" if date else None
    return {
        "country": location.get("country"), "admin1": location.get("admin1"),
        "place": location.get("place"), "incident_date": date, "incident_date_to": date_to,
        "incident_precision": precision,
        "incident_month": date[:7] if date and precision != "year" else None,
    }


def document(e: Any) -> str:
    """The searchable words of a submission (never its personal data)."""
    location = e.incident.get("location") or {}
    names = [p.get("name") for p in e.alleged_perpetrators]
    return search.normalise(e.summary, e.description, location.get("place"), *names)


class AllegationsView:
    """Folds a page of events into view rows through one cursor, then writes them at once."""

    def __init__(self, cur: Cursor) -> None:
        self.cur = cur
        self.rows: dict[str, dict[str, Any]] = {}
        self.new: set[str] = set()
        self.dirty: set[str] = set()
        self.docs: dict[str, str] = {}  # id -> words to index (whole doc if new, else added)
        self.categories: list[tuple[int, str]] = []  # (seq, code)
        self.perpetrators: list[tuple[int, int, str, str, str]] = []  # (seq, n, name, key, type)

    def apply_all(self, entries: Iterable[Entry]) -> None:
        """Apply events in log order, loading the rows they touch first."""
        entries = list(entries)
        submitted = {e.allegation_id for e in entries
                     if isinstance(e.event, Allegation.Submitted)}
        self.load({e.allegation_id for e in entries} - submitted)
        for entry in entries:
            self.apply(entry)

    def load(self, ids: set[str]) -> None:
        """Read the current rows of these allegations (in this transaction)."""
        wanted = sorted(i for i in ids if i not in self.rows)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT id, seq, {', '.join(MUTABLE)} FROM allegation_list WHERE id IN"
            for row in self.cur.execute(f"{sql} ({marks})", chunk).fetchall():
                self.rows[row["id"]] = row

    def apply(self, entry: Entry) -> None:
        """Apply one event: its own handler, then version, update time and position."""
        position, aid, recorded_at, event = entry
        handler = HANDLERS.get(type(event).__name__, _ignore)
        if isinstance(event, Allegation.Submitted):
            if aid in self.rows:
                raise ProjectionError(f"Allegation {aid} is submitted twice (position "
                                      f"{position}); rebuild the views.")
            row: dict[str, Any] = {"id": aid, "seq": position, "version": 0}
            self.rows[aid] = row
            self.new.add(aid)
        else:
            row = self.rows.get(aid)  # type: ignore[assignment]
            if row is None:
                raise ProjectionError(f"Event at position {position} is for allegation {aid}, "
                                      "which the views do not hold; rebuild the views.")
        if event.originator_version != row["version"] + 1:
            raise ProjectionError(
                f"Event at position {position} is version {event.originator_version} of "
                f"{aid}, but the views hold version {row['version']}: an event was skipped or "
                "applied twice. Rebuild the views (`tracker projections rebuild`).")
        handler(self, row, event)
        row["version"] = event.originator_version
        row["updated_at"] = recorded_at
        row["position"] = position
        self.dirty.add(aid)

    def flush(self) -> None:
        """Write every changed row, side table and search document."""
        cur = self.cur
        new = [self.rows[i] for i in sorted(self.new)]
        pg = cur.dialect == "postgres"
        cols = COLUMNS + (("search",) if pg else ())
        marks = ", ".join(["?"] * len(COLUMNS) + ([search.insert_value(cur.dialect)] if pg else []))
        insert = f"INSERT INTO allegation_list ({', '.join(cols)}) VALUES ({marks})"
        cur.executemany(
            insert,
            [tuple(r[c] for c in COLUMNS) + ((self.docs.get(r["id"], ""),) if pg else ())
             for r in new])
        update = f"UPDATE allegation_list SET {', '.join(f'{c} = ?' for c in MUTABLE)}"
        cur.executemany(
            update + " WHERE seq = ?",
            [(*(self.rows[i][c] for c in MUTABLE), self.rows[i]["seq"])
             for i in sorted(self.dirty - self.new)])
        cur.executemany("INSERT INTO allegation_categories (seq, category)"
                        " VALUES (?, ?)", self.categories)
        cur.executemany("INSERT INTO allegation_perpetrators (seq, n, name, name_key,"
                        " type) VALUES (?, ?, ?, ?, ?)", self.perpetrators)
        search.write_new(cur, [(r["seq"], self.docs.get(r["id"], "")) for r in new])
        search.append(cur, [(self.rows[i]["seq"], text) for i, text in sorted(self.docs.items())
                            if i not in self.new])

    # ---- handlers: each changes only the row (and what is to be written with it) ----------

    def submitted(self, row: dict[str, Any], e: Any) -> None:
        """A new allegation: everything the list filters and groups on."""
        aid, seq = row["id"], row["seq"]
        victims = e.victims or {}
        perpetrators = [{"name": p.get("name"), "type": p.get("type")}
                        for p in e.alleged_perpetrators]
        row.update(
            organisation=e.organisation, status="received", summary=e.summary,
            categories=_json(list(e.categories)), perpetrators=_json(perpetrators),
            victims=victims.get("count"), children=victims.get("children"), assignee=None,
            duplicate_of=None, erased=0, sources=1, information=0, evidence=0, comments=0,
            submitted_at=e.timestamp.isoformat(), **incident_fields(e.incident))
        self.categories.extend((seq, c) for c in dict.fromkeys(e.categories))
        self.perpetrators.extend((seq, n, p["name"], p["name"].casefold(), p["type"])
                                 for n, p in enumerate(perpetrators))
        self.docs[aid] = document(e)

    def information_added(self, row: dict[str, Any], e: Any) -> None:
        """More information (searchable), perhaps with a corroborating source."""
        row["information"] += 1
        if e.source is not None:
            row["sources"] += 1
        words = search.normalise(e.text)
        if words:
            self.docs[row["id"]] = f"{self.docs.get(row['id'], '')} {words}".strip()

    def source_added(self, row: dict[str, Any], e: Any) -> None:
        """A corroborating source."""
        row["sources"] += 1

    def evidence_attached(self, row: dict[str, Any], e: Any) -> None:
        """The record of an evidence file."""
        row["evidence"] += 1

    def assigned(self, row: dict[str, Any], e: Any) -> None:
        """A reviewer is assigned."""
        row["assignee"] = e.assignee

    def status_changed(self, row: dict[str, Any], e: Any) -> None:
        """A step in the workflow."""
        row["status"] = e.status
        row["duplicate_of"] = e.duplicate_of if e.status == "duplicate" else None

    def commented(self, row: dict[str, Any], e: Any) -> None:
        """A reviewer's comment."""
        row["comments"] += 1

    def personal_data_erased(self, row: dict[str, Any], e: Any) -> None:
        """Crypto-shredding (the view never held the personal data)."""
        row["erased"] = 1


def _ignore(view: AllegationsView, row: dict[str, Any], e: Any) -> None:
    """Events that change nothing listed (OfficialResponseRecorded, unknown future types)."""


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _json(value: Any) -> str:
    return _ENCODER.encode(value)


Handler = Callable[[AllegationsView, dict[str, Any], Any], None]
HANDLERS: dict[str, Handler] = {
    "Submitted": AllegationsView.submitted,
    "InformationAdded": AllegationsView.information_added,
    "SourceAdded": AllegationsView.source_added,
    "EvidenceAttached": AllegationsView.evidence_attached,
    "Assigned": AllegationsView.assigned,
    "StatusChanged": AllegationsView.status_changed,
    "Commented": AllegationsView.commented,
    "OfficialResponseRecorded": _ignore,
    "PersonalDataErased": AllegationsView.personal_data_erased,
}
