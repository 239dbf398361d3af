"""The allegation list view: one row per allegation, a handler per event type.

Events are read as the stored JSON, with the standard `json` decoder and no object hook:
the view needs a few plain fields, so no domain event objects are built, and `protected`
(sealed personal data) stays an opaque, still encrypted value that no handler reads. Events
that only count (a comment, a piece of evidence...) are not decoded at all.
For an incident dated by a range, `incident_date` is `date_from` (filters and months use it);
an incident known only to the year has no `incident_month`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import Any, NamedTuple

from eventsourcing.utils import resolve_topic

from tracker.audit.log import first_positions, stored_event
from tracker.domain.allegation import Allegation
from tracker.domain.errors import TrackerError
from tracker.persistence.db import Cursor
from tracker.projections import search

COLUMNS = (
    "id", "seq", "organisation", "status", "summary", "categories", "perpetrators", "country",
    "admin1", "place", "incident_date", "incident_date_to", "incident_precision",
    "incident_month", "victims", "children", "assignee", "duplicate_of", "erased", "sources",
    "information", "evidence", "comments", "version", "submitted_at", "updated_at", "position",
)
# What later events change; the rest is fixed at submission.
MUTABLE = ("status", "assignee", "duplicate_of", "erased", "sources", "information", "evidence",
           "comments", "version", "updated_at", "position")
_ROW = itemgetter(*COLUMNS)
_CHANGES = itemgetter(*MUTABLE, "seq")

Record = tuple[Any, ...]  # (position, topic, version, state, allegation id, recorded_at)


class ProjectionError(TrackerError):
    """The log and the views disagree (e.g. an event out of sequence); rebuild the views."""

    title = "Projection inconsistent"


class Kind(NamedTuple):
    """What the view needs to know of an event class, found once per stored topic."""

    name: str  # the class name: the key of HANDLERS
    submitted: bool  # creates the allegation (and its row)
    upcast: bool  # the class has versions (class_version > 1): the library's mapper decodes
    # its events, so that its upcasters bring older ones up to date
    decode: bool  # its handler reads the event's fields (NEEDS_STATE)


_KINDS: dict[str, Kind] = {}


def kind_of(topic: str) -> Kind:
    """The kind of events stored under `topic` (the library resolves renamed topics)."""
    kind = _KINDS.get(topic)
    if kind is None:
        cls = resolve_topic(topic)
        kind = Kind(cls.__name__, issubclass(cls, Allegation.Submitted),
                    getattr(cls, "class_version", 1) != 1, cls.__name__ in NEEDS_STATE)
        _KINDS[topic] = kind
    return kind


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


class AllegationsView:
    """Folds a page of events into view rows through one cursor, then writes them at once.

    `bulk` (a rebuild): documents are stored but not indexed, and the caller has dropped
    the secondary indexes; `schema.finish` builds them all afterwards.
    """

    def __init__(self, cur: Cursor, bulk: bool = False, mapper: Any = None) -> None:
        self.cur = cur
        self.bulk = bulk
        self.mapper = mapper  # for events that need upcasting (none yet)
        self.rows: dict[str, dict[str, Any]] = {}
        self.new: list[str] = []  # ids of new rows, in log order
        self.dirty: set[str] = set()
        self.docs: dict[str, str] = {}  # id -> words to index (whole doc if new, else added)
        self.pg = cur.dialect == "postgres"
        # (seq, n, name, key, type), PostgreSQL only: SQLite derives them from the rows.
        self.perpetrators: list[tuple[int, int, str, str, str]] = []

    def apply_all(self, records: Iterable[Record]) -> None:
        """Apply stored events in log order, loading the rows they touch first.

        For each event: its own handler, then the row's version, update time and position.
        """
        records = list(records)
        kinds = [_KINDS.get(r[1]) or kind_of(r[1]) for r in records]
        touched = {r[4] for r in records}
        self.load(touched - {r[4] for r, k in zip(records, kinds, strict=True) if k.submitted})
        rows, new, handlers = self.rows, self.new, HANDLERS
        for record, kind in zip(records, kinds, strict=True):
            position, _, version, state, aid, recorded_at = record
            if kind.submitted:
                if aid in rows:
                    raise ProjectionError(f"Allegation {aid} is submitted twice (position "
                                          f"{position}); rebuild the views.")
                row: dict[str, Any] = {"id": aid, "seq": position, "version": 0,
                                       "submitted_at": recorded_at}
                rows[aid] = row
                new.append(aid)
            else:
                row = rows.get(aid)  # type: ignore[assignment]
                if row is None:
                    raise ProjectionError(f"Event at position {position} is for allegation "
                                          f"{aid}, which the views do not hold; rebuild the "
                                          "views.")
            if version != row["version"] + 1:
                raise ProjectionError(
                    f"Event at position {position} is version {version} of {aid}, but the "
                    f"views hold version {row['version']}: an event was skipped or applied "
                    "twice. Rebuild the views (`tracker projections rebuild`).")
            if kind.upcast:
                data = self._upcast(record)
            elif kind.decode:
                data = _decode(state)
            else:
                data = None
            handlers.get(kind.name, _ignore)(self, row, data)
            row["version"] = version
            row["updated_at"] = recorded_at
            row["position"] = position
        self.dirty |= touched

    def _upcast(self, record: Record) -> dict[str, Any]:
        if self.mapper is None:
            raise ProjectionError(f"Event at position {record[0]} needs upcasting; "
                                  "project it with the application's mapper.")
        stored = stored_event(record[4], record[2], record[1], record[3])
        state: dict[str, Any] = self.mapper.to_domain_event(stored).__dict__
        return state

    def load(self, ids: set[str]) -> None:
        """Read the current rows of these allegations (in this transaction).

        A row's `seq` is the position of the allegation's first event, so its first audit
        leaf leads to it (only leaves given a position count). The views' index by id is not
        used: a bulk rebuild builds it only at the end.
        """
        wanted = sorted(i for i in ids if i not in self.rows)
        for start in range(0, len(wanted), 500):
            seqs = list(first_positions(self.cur, wanted[start:start + 500]).values())
            if not seqs:
                continue
            sql = (f"SELECT a.id, a.seq, {', '.join(f'a.{c}' for c in MUTABLE)}"
                   " FROM allegation_list a WHERE a.seq IN")
            for row in self.cur.execute(f"{sql} ({', '.join('?' * len(seqs))})",
                                        seqs).fetchall():
                self.rows[row["id"]] = row

    def flush(self) -> None:
        """Write every changed row, side table and search document."""
        cur = self.cur
        new = [self.rows[i] for i in self.new]
        docs = self.docs
        if self.pg:  # (`_insert_columns` measured slower here: 27 arrays to adapt)
            marks = ", ".join(["?"] * len(COLUMNS) + [search.insert_value(cur.dialect)])
            cur.executemany(f"INSERT INTO allegation_list ({', '.join(COLUMNS)}, search)"
                            f" VALUES ({marks})",
                            [(*_ROW(r), docs.get(r["id"], "")) for r in new])
        else:
            cur.executemany(f"INSERT INTO allegation_list ({', '.join(COLUMNS)})"
                            f" VALUES ({', '.join('?' * len(COLUMNS))})", [_ROW(r) for r in new])
        changed = sorted((self.rows[i] for i in self.dirty.difference(self.new)),
                         key=itemgetter("seq"))
        update = f"UPDATE allegation_list SET {', '.join(f'{c} = ?' for c in MUTABLE)}"
        cur.executemany(update + " WHERE seq = ?", [_CHANGES(r) for r in changed])
        if new:
            self._side_tables(new[0]["seq"], new[-1]["seq"])
        search.write_new(cur, [(r["seq"], docs.get(r["id"], "")) for r in new], self.bulk)
        search.append(cur, [(r["seq"], docs[r["id"]]) for r in changed if r["id"] in docs],
                      self.bulk)

    def _side_tables(self, first: int, last: int) -> None:
        """The category and perpetrator rows of the new allegations (`seq` first..last),
        taken by the database from the JSON columns just written."""
        cur = self.cur
        if self.pg:
            cur.execute(
                "INSERT INTO allegation_categories (seq, category) SELECT a.seq, j.value"
                " FROM allegation_list a CROSS JOIN LATERAL"
                " jsonb_array_elements_text(CAST(a.categories AS jsonb)) AS j(value)"
                " WHERE a.seq BETWEEN ? AND ? ON CONFLICT DO NOTHING", (first, last))
            names = ("seq", "n", "name", "name_key", "type")
            _insert_columns(cur, "allegation_perpetrators", dict(zip(
                names, zip(*self.perpetrators, strict=True), strict=True))
                if self.perpetrators else {})
            return
        # `name_key` is Python's casefold, which SQLite's lower() is not beyond ASCII.
        getattr(cur.raw, "sqlite_cursor", cur.raw).connection.create_function(
            "tracker_casefold", 1, _casefold, deterministic=True)
        cur.execute("INSERT OR IGNORE INTO allegation_categories (seq, category)"
                    " SELECT a.seq, j.value FROM allegation_list a, json_each(a.categories) j"
                    " WHERE a.seq BETWEEN ? AND ?", (first, last))
        cur.execute("INSERT INTO allegation_perpetrators (seq, n, name, name_key, type)"
                    " SELECT a.seq, j.key, json_extract(j.value, '$.name'),"
                    " tracker_casefold(json_extract(j.value, '$.name')),"
                    " json_extract(j.value, '$.type')"
                    " FROM allegation_list a, json_each(a.perpetrators) j"
                    " WHERE a.seq BETWEEN ? AND ?", (first, last))

    # ---- handlers: each changes only the row (and what is to be written with it) ----------
    # `e` is the event's stored state as plain JSON values (None for kinds not in NEEDS_STATE).

    def submitted(self, row: dict[str, Any], e: dict[str, Any]) -> None:
        """A new allegation: everything the list filters and groups on."""
        seq = row["seq"]
        victims = e["victims"] or {}
        perpetrators = [(p.get("name"), p.get("type")) for p in e["alleged_perpetrators"]]
        categories = e["categories"]
        row.update(incident_fields(e["incident"]))
        row.update({
            "organisation": e["organisation"], "status": "received", "summary": e["summary"],
            "categories": strings_json(categories),
            "perpetrators": perpetrators_json(perpetrators),
            "victims": victims.get("count"), "children": victims.get("children"),
            "assignee": None, "duplicate_of": None, "erased": 0, "sources": 1,
            "information": 0, "evidence": 0, "comments": 0})
        if self.pg:
            self.perpetrators.extend((seq, n, name, name.casefold(), kind)
                                     for n, (name, kind) in enumerate(perpetrators))
        self.docs[row["id"]] = document(self.cur, e)

    def information_added(self, row: dict[str, Any], e: dict[str, Any]) -> None:
        """More information (searchable), perhaps with a corroborating source."""
        row["information"] += 1
        if e["source"] is not None:
            row["sources"] += 1
        words = search.indexable(self.cur.dialect, e["text"])
        if words:
            self.docs[row["id"]] = f"{self.docs.get(row['id'], '')} {words}".strip()

    def source_added(self, row: dict[str, Any], e: None) -> None:
        """A corroborating source."""
        row["sources"] += 1

    def evidence_attached(self, row: dict[str, Any], e: None) -> None:
        """The record of an evidence file."""
        row["evidence"] += 1

    def assigned(self, row: dict[str, Any], e: dict[str, Any]) -> None:
        """A reviewer is assigned."""
        row["assignee"] = e["assignee"]

    def status_changed(self, row: dict[str, Any], e: dict[str, Any]) -> None:
        """A step in the workflow."""
        row["status"] = status = e["status"]
        row["duplicate_of"] = e["duplicate_of"] if status == "duplicate" else None

    def commented(self, row: dict[str, Any], e: None) -> None:
        """A reviewer's comment."""
        row["comments"] += 1

    def personal_data_erased(self, row: dict[str, Any], e: None) -> None:
        """Crypto-shredding (the view never held the personal data)."""
        row["erased"] = 1


def document(cur: Cursor, e: dict[str, Any]) -> str:
    """The searchable words of a submission (never its personal data)."""
    location = e["incident"].get("location") or {}
    names = [p.get("name") for p in e["alleged_perpetrators"]]
    return search.indexable(cur.dialect, e["summary"], e["description"], location.get("place"),
                            *names)


def _ignore(view: AllegationsView, row: dict[str, Any], e: Any) -> None:
    """Events that change nothing listed (OfficialResponseRecorded, unknown future types)."""


_PG_TYPES = {"seq": "bigint", "n": "bigint"}


def _insert_columns(cur: Cursor, table: str, columns: dict[str, Any]) -> None:
    """PostgreSQL: insert rows given column by column, as one statement over arrays
    (`unnest`), which costs far less than a statement per row for narrow rows."""
    if not columns:
        return
    names = list(columns)
    arrays = ", ".join(f"CAST(? AS {_PG_TYPES.get(n, 'text')}[])" for n in names)
    cur.execute(f"INSERT INTO {table} ({', '.join(names)}) SELECT * FROM unnest({arrays})",
                [list(v) for v in columns.values()])


def _casefold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


# The standard decoder's scanner, without its Python wrapper (whitespace checks, type tests).
_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _decode(state: bytes | str) -> dict[str, Any]:
    """A stored state (one JSON object, as the library's encoder writes it) as plain values."""
    text = state if isinstance(state, str) else bytes(state).decode()
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        value, end = None, -1
    if end != len(text) or not isinstance(value, dict):
        value = json.loads(text)  # whitespace around it, or not JSON at all: say why
        if not isinstance(value, dict):
            raise ProjectionError("A stored event's state is not a JSON object.")
    return value


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_PLAIN = re.compile(r'[^"\\\x00-\x1f]*\Z')  # what JSON writes between quotes as it is


def strings_json(values: list[Any]) -> str:
    """`values` (strings) as `_ENCODER` writes them, without its machinery when none needs
    escaping (the usual case: category codes)."""
    try:
        joined = '","'.join(values)
    except TypeError:  # not all strings
        return _ENCODER.encode(values)
    if values and _PLAIN.match(joined):
        return f'["{joined}"]'
    return _ENCODER.encode(values)


def perpetrators_json(perpetrators: list[tuple[Any, Any]]) -> str:
    """`[{"name": ..., "type": ...}]` as `_ENCODER` writes it (fast when nothing needs
    escaping)."""
    texts = [v for pair in perpetrators for v in pair]
    if all(type(v) is str for v in texts) and _PLAIN.match("".join(texts)):
        return "[" + ",".join(f'{{"name":"{n}","type":"{k}"}}' for n, k in perpetrators) + "]"
    return _ENCODER.encode([{"name": n, "type": k} for n, k in perpetrators])


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
# The kinds whose handler reads the event's fields; the others are not decoded at all.
NEEDS_STATE = frozenset({"Submitted", "InformationAdded", "Assigned", "StatusChanged"})
