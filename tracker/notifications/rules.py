"""Which subscriptions an event concerns (SPEC §4): pure functions of an event and the facts."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

_DELIVERY_NS = uuid.UUID("5b0c7a52-2f7e-4d8c-9a57-0f3c1e6d4a21")

NEW_ALLEGATION = "Submitted"
# Events on an allegation that concern its assignee (status changes and new information).
FOLLOWED = frozenset({"StatusChanged", "InformationAdded", "SourceAdded"})
# A request for information: the submitting organisation's monitors are told.
REQUEST_FOR_INFORMATION = "needs_information"
EVENT_TYPES = (
    "Submitted", "InformationAdded", "SourceAdded", "EvidenceAttached", "Assigned",
    "StatusChanged", "Commented", "OfficialResponseRecorded", "PersonalDataErased",
)
CHANNELS = ("webhook", "email")
SUBSCRIBER_ROLES = ("reviewer", "monitor")


@dataclass(frozen=True)
class Subscription:
    """What the rules know of a subscription: whose it is, its filters, when it was live."""

    id: str
    owner: str
    role: str
    organisation: str
    channel: str = "webhook"
    categories: frozenset[str] = frozenset()
    countries: frozenset[str] = frozenset()
    event_types: frozenset[str] = frozenset()
    created_position: int = 0
    deleted_position: int | None = None

    def live_at(self, position: int) -> bool:
        """True when the subscription existed when the event at `position` was recorded."""
        return self.created_position <= position and (
            self.deleted_position is None or position < self.deleted_position)


@dataclass(frozen=True)
class Facts:
    """What the rules need to know about an allegation just before an event."""

    organisation: str
    categories: tuple[str, ...]
    country: str | None
    assignee: str | None = None
    status: str = "received"


@dataclass(frozen=True)
class LoggedEvent:
    """An event of the log as the rules see it: type, position, actor and public data."""

    position: int
    allegation_id: str
    event_type: str
    actor: str
    organisation: str
    data: Mapping[str, Any] = field(default_factory=dict)


def delivery_id(position: int, subscription_id: str) -> str:
    """The deterministic id of the delivery of the event at `position` to a subscription."""
    return str(uuid.uuid5(_DELIVERY_NS, f"{position}/{subscription_id}"))


def facts_after(before: Facts | None, event: LoggedEvent) -> Facts | None:
    """The facts once `event` is applied (None while the allegation is unknown)."""
    data = event.data
    if event.event_type == NEW_ALLEGATION:
        return _submitted_facts(event)
    if before is None:
        return None
    if event.event_type == "Assigned":
        return replace(before, assignee=data.get("assignee"))
    if event.event_type == "StatusChanged":
        return replace(before, status=str(data.get("status")))
    return before


def _submitted_facts(event: LoggedEvent) -> Facts:
    location = (event.data.get("incident") or {}).get("location") or {}
    return Facts(organisation=event.organisation,
                 categories=tuple(event.data.get("categories") or ()),
                 country=location.get("country"))


def matches_filters(subscription: Subscription, facts: Facts) -> bool:
    """True when a new allegation passes the subscription's filters (empty filter: any)."""
    s = subscription
    if s.event_types and NEW_ALLEGATION not in s.event_types:
        return False
    if s.categories and not s.categories.intersection(facts.categories):
        return False
    return not s.countries or facts.country in s.countries


def recipients(event: LoggedEvent, before: Facts | None,
               subscriptions: Iterable[Subscription]) -> list[Subscription]:
    """The subscriptions `event` concerns, in the given order, each once.

    A new allegation reaches reviewers whose filters match; an assignment reaches every
    subscription of the assignee; a status change or new information reaches every
    subscription of the current assignee; a request for information also reaches the
    submitting organisation's monitors. Nobody is notified of their own action.
    """
    live = [s for s in subscriptions if s.live_at(event.position) and s.owner != event.actor]
    if event.event_type == NEW_ALLEGATION:
        facts = _submitted_facts(event)
        return [s for s in live if s.role == "reviewer" and matches_filters(s, facts)]
    if before is None:
        return []
    owners: set[str] = set()
    if event.event_type == "Assigned" and event.data.get("assignee"):
        owners.add(str(event.data["assignee"]))
    elif event.event_type in FOLLOWED and before.assignee:
        owners.add(before.assignee)
    chosen = [s for s in live if s.owner in owners and s.role == "reviewer"]
    if (event.event_type == "StatusChanged"
            and event.data.get("status") == REQUEST_FOR_INFORMATION):
        chosen += [s for s in live if s.role == "monitor"
                   and s.organisation == before.organisation]
    unique: dict[str, Subscription] = {}
    for s in chosen:
        unique.setdefault(s.id, s)
    return list(unique.values())
