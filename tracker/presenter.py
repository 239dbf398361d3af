"""Plain-value views of an allegation and its events, redacted for the viewer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracker.domain.allegation import Allegation
from tracker.domain.values import PROTECTED_LIST_FIELDS
from tracker.protection.sealed import ERASED_MARK, PROTECTED_MARK, Sealed, masked, unseal

PROVENANCE = ("actor", "actor_role", "organisation", "request_id", "idempotency_key")
_NOT_DATA = {"originator_id", "originator_version", "timestamp", "originator_topic", *PROVENANCE}

# Returns the allegation's data key, or None once erased.
KeyLookup = Callable[[str], bytes | None]


def reveal(allegation_id: str, blocks: list[Sealed], clear: bool, key_of: KeyLookup
           ) -> dict[str, Any] | None:
    """Merge sealed blocks: in clear for those allowed, else each value masked."""
    if not blocks:
        return None
    fields = sorted({f for b in blocks for f in b.fields})
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


def state(a: Allegation, clear: bool, key_of: KeyLookup) -> dict[str, Any]:
    """The allegation as the API shows it."""
    aid = str(a.id)
    return {
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
        "protected": reveal(aid, a.sealed, clear, key_of),
        "consent": a.consent,
        "language": a.language,
        "official_responses": list(a.official_responses),
        "assignee": a.assignee,
        "duplicate_of": a.duplicate_of,
        "information": list(a.information),
        "evidence": list(a.evidence),
        "comments": list(a.comments),
        "personal_data_erased": a.erased,
    }


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
