"""Who may do what (SPEC §3): one table, used by the API and the pages alike."""

from __future__ import annotations

from tracker.domain.errors import NotFoundError, PermissionDeniedError
from tracker.domain.values import Actor

# action -> roles allowed (before organisation scoping)
RULES: dict[str, frozenset[str]] = {
    "submit": frozenset({"monitor", "admin"}),
    "read": frozenset({"monitor", "reviewer", "auditor", "admin"}),
    "change_status": frozenset({"reviewer", "admin"}),
    "assign": frozenset({"reviewer", "admin"}),
    "comment": frozenset({"reviewer", "admin"}),
    "add_information": frozenset({"monitor", "reviewer"}),
    "attach_evidence": frozenset({"monitor", "reviewer"}),
    "history": frozenset({"reviewer", "auditor", "admin"}),
    "erase": frozenset({"admin"}),
    "stats": frozenset({"reviewer", "auditor", "admin"}),
    "audit": frozenset({"auditor", "admin"}),
    "list_users": frozenset({"reviewer", "admin"}),
    "manage_users": frozenset({"admin"}),
    "subscribe": frozenset({"reviewer"}),
    "notifications": frozenset({"reviewer", "admin"}),
}


def can(actor: Actor, action: str) -> bool:
    """True when the actor's role allows the action at all."""
    return actor.role in RULES[action]


def require(actor: Actor, action: str) -> None:
    """Refuse (403) an action the role does not allow."""
    if not can(actor, action):
        raise PermissionDeniedError(
            f"The role '{actor.role}' may not {action.replace('_', ' ')}; "
            f"this needs one of: {', '.join(sorted(RULES[action]))}."
        )


def sees_organisation_only(actor: Actor) -> bool:
    """Monitors see only their own organisation's allegations."""
    return actor.role == "monitor"


def require_visible(actor: Actor, organisation: str, allegation_id: str) -> None:
    """404, never 403, for an allegation the caller may not know exists."""
    if sees_organisation_only(actor) and organisation != actor.organisation:
        raise NotFoundError(f"No allegation {allegation_id} is visible to you.")


def sees_protected(actor: Actor, assignee: str | None) -> bool:
    """Only admins and the assigned reviewer see personal data in clear."""
    return actor.role == "admin" or (actor.role == "reviewer" and actor.id == assignee)
