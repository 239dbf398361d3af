"""Small value objects and constants: statuses, workflow, gradings, provenance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracker.domain.errors import ValidationError

STATUSES = (
    "received", "under_review", "needs_information", "verified",
    "unverified", "rejected", "duplicate", "closed",
)

# The workflow of SPEC §2; enforced by the aggregate.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "received": ("under_review", "rejected", "duplicate"),
    "under_review": ("needs_information", "verified", "unverified", "rejected", "duplicate"),
    "needs_information": ("under_review",),
    "verified": ("closed", "under_review"),
    "unverified": ("closed", "under_review"),
    "rejected": ("closed", "under_review"),
    "duplicate": ("closed", "under_review"),
    "closed": ("under_review",),
}

ROLES = ("monitor", "reviewer", "auditor", "admin")
SOURCE_TYPES = (
    "victim", "witness", "family", "media", "ngo_report", "un_report",
    "official", "social_media", "other",
)
RELIABILITY = ("A", "B", "C", "D", "E", "F")  # Admiralty: source reliability
CREDIBILITY = (1, 2, 3, 4, 5, 6)  # Admiralty: credibility of the information
PERPETRATOR_TYPES = (
    "state_forces", "armed_group", "militia", "self_defence_group", "unknown", "other",
)
DATE_PRECISIONS = ("day", "month", "year")
LOCATION_PRECISIONS = ("exact", "approximate", "admin1", "country")
PROTECTED_LIST_FIELDS = ("victim_names", "witness_names", "contacts")
PROTECTED_TEXT_FIELDS = ("source_identity", "notes")
PROTECTED_FIELDS = PROTECTED_LIST_FIELDS + PROTECTED_TEXT_FIELDS
OFFICIAL_RESPONSE_TYPES = ("denial", "acknowledgement", "investigation", "no_response", "other")


def allowed_next(status: str) -> list[str]:
    """The statuses the workflow allows after `status`."""
    return list(TRANSITIONS.get(status, ()))


def victims_problems(victims: dict[str, Any]) -> dict[str, list[str]]:
    """Consistency problems of a victims block (counts already non-negative integers)."""
    problems: dict[str, list[str]] = {}
    count = victims.get("count")
    if count is None:
        return problems
    for part in ("children", "female", "male", "unknown_sex"):
        value = victims.get(part)
        if value is not None and value > count:
            problems[f"victims.{part}"] = [f"Must not exceed victims.count ({count})."]
    sexes = [victims.get(k) for k in ("female", "male", "unknown_sex")]
    if all(v is not None for v in sexes) and sum(v for v in sexes if v is not None) != count:
        problems["victims.count"] = [
            "female + male + unknown_sex must equal count when all three are given."
        ]
    return problems


def require(problems: dict[str, list[str]]) -> None:
    """Raise a ValidationError when there are problems."""
    if problems:
        raise ValidationError(problems)


@dataclass(frozen=True)
class Actor:
    """An authenticated user acting on the tracker."""

    id: str
    name: str
    role: str
    organisation: str


@dataclass(frozen=True)
class Provenance:
    """Who did what, set by the server for every event (never from a request body)."""

    actor: str
    actor_role: str
    organisation: str
    request_id: str
    idempotency_key: str | None = None

    @classmethod
    def of(cls, actor: Actor, request_id: str, idempotency_key: str | None = None) -> Provenance:
        """Provenance of a request by `actor`."""
        return cls(actor.id, actor.role, actor.organisation, request_id, idempotency_key)

    def as_kwargs(self) -> dict[str, Any]:
        """The event attributes this provenance sets."""
        # Not `dataclasses.asdict`: it deep-copies every value (~25 us per event).
        return {"actor": self.actor, "actor_role": self.actor_role,
                "organisation": self.organisation, "request_id": self.request_id,
                "idempotency_key": self.idempotency_key}
