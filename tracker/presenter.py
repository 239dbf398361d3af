"""Plain-value views of an allegation and its events, redacted for the viewer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tracker.domain.allegation import Allegation
from tracker.domain.values import PROTECTED_LIST_FIELDS
from tracker.protection.sealed import ERASED_MARK, PROTECTED_MARK, Sealed, masked, unseal

PROVENANCE = ("actor", "actor_role", "organisation", "request_id", "idempotency_key")
_NOT_DATA = {"originator_id", "originator_version", "timestamp", "originator_topic", *PROVENANCE}

# Returns the allegation's data key, or None once erased.
KeyLookup = Callable[[str], bytes | None]

# The entries an allegation accumulates while it is worked on: kept in their events, not in
# the aggregate's state; a state shows the latest few of each and how many there are.
ENTRY_KINDS = ("comments", "information", "evidence")


@dataclass(frozen=True)
class Page:
    """Entries newest first, and the cursor of the next (older) page, or None at the end."""

    items: list[dict[str, Any]]
    next_cursor: str | None = None


def reveal(allegation_id: str, blocks: list[Sealed], clear: bool, key_of: KeyLookup,
           erased: bool | None = None) -> dict[str, Any] | None:
    """Merge sealed blocks: in clear for those allowed, else each value masked.

    `erased`: whether the allegation's personal data was erased, when the caller knows it
    from the current state (the erasure event and the key's destruction commit together);
    masking for a viewer who may not see personal data then needs no key lookup.
    """
    if not blocks:
        return None
    fields = sorted({f for b in blocks for f in b.fields})
    if erased:
        return masked(fields, ERASED_MARK)
    if erased is not None and not clear:
        return masked(fields, PROTECTED_MARK)
    key = key_of(allegation_id)
    if key is None:
        return masked(fields, ERASED_MARK)
    if not clear:
        return masked(fields, PROTECTED_MARK)
    merged: dict[str, Any] = {}
    for block in blocks:
        for name, value in unseal(key, allegation_id, block).items():
            if name in PROTECTED_LIST_FIELDS:
                merged.setdefault(name, []).extend(value)
            else:
                merged[name] = value
    return merged


def etag(version: int) -> str:
    """The strong entity tag of a version."""
    return f'"{version}"'


def state(a: Allegation, clear: bool, key_of: KeyLookup,
          recent: Mapping[str, Page] | None = None, erased: bool | None = None
          ) -> dict[str, Any]:
    """The allegation as the API shows it.

    `recent`: the latest entries of each kind (see `ENTRY_KINDS`), read from the event log;
    without it the state carries only how many there are. `erased`: see `reveal`.
    """
    aid = str(a.id)
    out = {
        "id": aid,
        "status": a.status,
        "version": a.version,
        "etag": etag(a.version),
        "submitted_at": a.created_on.isoformat(),
        "updated_at": a.modified_on.isoformat(),
        "organisation": a.organisation,
        "submitted_by": a.submitted_by,
        "summary": a.summary,
        "description": a.description,
        "categories": list(a.categories),
        "incident": a.incident,
        "source": {k: v for k, v in a.sources[0].items()},
        "sources": list(a.sources),
        "alleged_perpetrators": list(a.alleged_perpetrators),
        "victims": a.victims,
        "protected": reveal(aid, a.sealed, clear, key_of, erased),
        "consent": a.consent,
        "language": a.language,
        "official_responses": list(a.official_responses),
        "assignee": a.assignee,
        "duplicate_of": a.duplicate_of,
        "personal_data_erased": a.erased,
    }
    for kind in ENTRY_KINDS:
        out[f"{kind}_total"] = getattr(a, f"{kind}_total")
        if recent is not None:
            page = recent[kind]
            out[kind] = page.items
            out[f"{kind}_next_cursor"] = page.next_cursor
    return out


def entry(event: Any, position: int, sources: list[dict[str, Any]]) -> dict[str, Any]:
    """A comment, piece of information or evidence record, from its event.

    `sources`: the allegation's sources, to name the one a piece of information brought.
    """
    out: dict[str, Any]
    if isinstance(event, Allegation.EvidenceAttached):
        out = {"sha256": event.sha256, "media_type": event.media_type, "size": event.size,
               "description": event.description, "uri": event.uri}
    else:
        out = {"text": event.text}
        if isinstance(event, Allegation.InformationAdded) and event.source is not None:
            version = event.originator_version
            out["source_id"] = next((s["id"] for s in sources if s["version"] == version), None)
    out.update(version=event.originator_version, recorded_at=event.timestamp.isoformat(),
               actor=event.actor, organisation=event.organisation, position=position)
    return out


def event_type(topic: str) -> str:
    """`Allegation.StatusChanged` -> `StatusChanged`."""
    return topic.rsplit(".", 1)[-1].rsplit(":", 1)[-1]


def event_data(event: Any, clear: bool, key_of: KeyLookup) -> dict[str, Any]:
    """An event's own data (no provenance), personal data redacted for the viewer."""
    aid = str(event.originator_id)
    data: dict[str, Any] = {}
    for name, value in vars(event).items():
        if name in _NOT_DATA:
            continue
        data[name] = reveal(aid, [value], clear, key_of) if isinstance(value, Sealed) else value
    return data


def provenance(event: Any) -> dict[str, Any]:
    """The server-set provenance of an event."""
    return {name: getattr(event, name) for name in PROVENANCE}
