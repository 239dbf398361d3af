"""The Allegation aggregate: commands validate, then record immutable past-tense events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from tracker.domain.errors import ErasedError, IllegalTransitionError, ValidationError
from tracker.domain.values import (
    STATUSES,
    Provenance,
    allowed_next,
    require,
    victims_problems,
)
from tracker.protection.sealed import Sealed
from tracker.taxonomy import category_codes


def _text(value: str | None, field: str, limit: int) -> dict[str, list[str]]:
    if value is None or not value.strip():
        return {field: ["Must not be empty."]}
    if len(value) > limit:
        return {field: [f"Must be at most {limit} characters."]}
    return {}


# A retry comes seconds or minutes after its request; 1,000 later keyed writes on the same
# allegation is far beyond any retry window.
KEPT_IDEMPOTENCY_KEYS = 1000


class Allegation(Aggregate):
    """An allegation of a violation, as reported, corroborated and reviewed over time.

    The state keeps what the workflow and the allegation's own document need (its facts,
    sources and their grading, personal data blocks, status, assignee). Comments, added
    information and evidence records accumulate for as long as an allegation is worked on,
    so the state keeps only how many there are: their content stays in their events, and the
    application reads the latest few, or any page of them, from the event log. The state, its
    snapshots and the cost of loading it therefore no longer grow with those entries.
    """

    TOPIC = "Allegation"
    # 2: `comments`, `information` and `evidence` lists became counts (`upcast_v1_v2`).
    class_version = 2

    class Event(Aggregate.Event):
        """Every event carries server-set provenance."""

        actor: str
        actor_role: str
        organisation: str
        request_id: str
        idempotency_key: str | None

        def mutate(self, aggregate: Any) -> Any:
            # Remembered so that a retried request is answered, not recorded twice: the keys
            # of the last KEPT_IDEMPOTENCY_KEYS keyed writes (oldest forgotten first, the same
            # on every replay), so that the state does not grow with every form sent.
            agg = super().mutate(aggregate)
            if self.idempotency_key and agg is not None:
                keys = agg.idempotency_keys
                keys[f"{self.actor}|{self.idempotency_key}"] = self.originator_version
                while len(keys) > KEPT_IDEMPOTENCY_KEYS:
                    del keys[next(iter(keys))]
            return agg

    class Created(Event, Aggregate.Created):
        TOPIC = "Allegation.Created"  # unused: required by explicit topics; see Submitted

    class Submitted(Event, Aggregate.Created):
        TOPIC = "Allegation.Submitted"
        summary: str
        description: str
        categories: list[str]
        incident: dict[str, Any]
        source: dict[str, Any]
        alleged_perpetrators: list[dict[str, Any]]
        victims: dict[str, Any] | None
        protected: Sealed | None
        consent: dict[str, Any] | None
        language: str | None
        official_response: dict[str, Any] | None
        fingerprint: str

        def apply(self, a: Allegation) -> None:
            a.summary, a.description = self.summary, self.description
            a.categories = list(self.categories)
            a.incident = dict(self.incident)
            a.sources = [_source_entry(self, self.source, 1)]
            a.alleged_perpetrators = list(self.alleged_perpetrators)
            a.victims = self.victims
            a.sealed = [self.protected] if self.protected else []
            a.consent = self.consent
            a.language = self.language
            a.official_responses = [self.official_response] if self.official_response else []
            a.organisation = self.organisation
            a.submitted_by = self.actor
            a.fingerprint = self.fingerprint
            a.status = "received"
            a.assignee = None
            a.duplicate_of = None
            a.comments_total = a.information_total = a.evidence_total = 0
            a.erased = False
            a.idempotency_keys = {}

    class InformationAdded(Event):
        TOPIC = "Allegation.InformationAdded"
        text: str
        source: dict[str, Any] | None
        protected: Sealed | None

        def apply(self, a: Allegation) -> None:
            if self.source is not None:
                a.sources.append(_source_entry(self, self.source, len(a.sources) + 1))
            a.information_total += 1
            if self.protected:
                a.sealed.append(self.protected)

    class SourceAdded(Event):
        TOPIC = "Allegation.SourceAdded"
        source: dict[str, Any]

        def apply(self, a: Allegation) -> None:
            a.sources.append(_source_entry(self, self.source, len(a.sources) + 1))

    class EvidenceAttached(Event):
        TOPIC = "Allegation.EvidenceAttached"
        sha256: str
        media_type: str
        size: int
        description: str
        uri: str | None

        def apply(self, a: Allegation) -> None:
            a.evidence_total += 1

    class Assigned(Event):
        TOPIC = "Allegation.Assigned"
        assignee: str
        previous: str | None

        def apply(self, a: Allegation) -> None:
            a.assignee = self.assignee

    class StatusChanged(Event):
        TOPIC = "Allegation.StatusChanged"
        from_status: str
        status: str
        reason: str
        duplicate_of: str | None

        def apply(self, a: Allegation) -> None:
            a.status = self.status
            a.duplicate_of = self.duplicate_of if self.status == "duplicate" else None

    class Commented(Event):
        TOPIC = "Allegation.Commented"
        text: str

        def apply(self, a: Allegation) -> None:
            a.comments_total += 1

    class OfficialResponseRecorded(Event):
        TOPIC = "Allegation.OfficialResponseRecorded"
        response: dict[str, Any]

        def apply(self, a: Allegation) -> None:
            a.official_responses.append(self.response)

    class PersonalDataErased(Event):
        TOPIC = "Allegation.PersonalDataErased"
        reason: str

        def apply(self, a: Allegation) -> None:
            a.erased = True

    if TYPE_CHECKING:  # set by `Submitted.apply`; hidden from the dataclass machinery
        summary: str
        description: str
        categories: list[str]
        incident: dict[str, Any]
        sources: list[dict[str, Any]]
        alleged_perpetrators: list[dict[str, Any]]
        victims: dict[str, Any] | None
        sealed: list[Sealed]
        consent: dict[str, Any] | None
        language: str | None
        official_responses: list[dict[str, Any]]
        organisation: str
        submitted_by: str
        fingerprint: str
        status: str
        assignee: str | None
        duplicate_of: str | None
        information_total: int
        evidence_total: int
        comments_total: int
        erased: bool
        idempotency_keys: dict[str, int]

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """A snapshot taken before version 2 carries the entries themselves: keep their count."""
        for name in ("comments", "information", "evidence"):
            state[f"{name}_total"] = len(state.pop(name, None) or [])

    @classmethod
    def submit(cls, allegation_id: UUID, report: dict[str, Any], protected: Sealed | None,
               fingerprint: str, prov: Provenance) -> Allegation:
        """Record a new allegation (the report was shape-checked at the edge)."""
        problems = _text(report.get("summary"), "summary", 300)
        problems |= _text(report.get("description"), "description", 20_000)
        problems |= _categories_problems(report.get("categories"))
        if report.get("victims"):
            problems |= victims_problems(report["victims"])
        require(problems)
        return cls._create(
            cls.Submitted, id=allegation_id, **prov.as_kwargs(),
            summary=report["summary"], description=report["description"],
            categories=list(report["categories"]), incident=report["incident"],
            source=report["source"],
            alleged_perpetrators=list(report.get("alleged_perpetrators") or []),
            victims=report.get("victims"), protected=protected,
            consent=report.get("consent"), language=report.get("language"),
            official_response=report.get("official_response"), fingerprint=fingerprint,
        )

    def add_information(self, text: str | None, source: dict[str, Any] | None,
                        protected: Sealed | None, prov: Provenance) -> None:
        """Add information, or a corroborating source, each with its own grading."""
        if protected is not None and self.erased:
            raise ErasedError("This allegation's personal data was erased; new personal data "
                              "cannot be attached to it. Submit it as a new allegation.")
        if not text or not text.strip():
            if source is None:
                raise ValidationError({"text": ["Give `text`, a `source`, or both."]})
            self.trigger_event(self.SourceAdded, **prov.as_kwargs(), source=source)
            return
        require(_text(text, "text", 20_000))
        self.trigger_event(self.InformationAdded, **prov.as_kwargs(), text=text, source=source,
                           protected=protected)

    def attach_evidence(self, evidence: dict[str, Any], prov: Provenance) -> None:
        """Record a file's content hash and description (the file itself is kept elsewhere)."""
        self.trigger_event(self.EvidenceAttached, **prov.as_kwargs(),
                           sha256=evidence["sha256"].lower(), media_type=evidence["media_type"],
                           size=evidence["size"], description=evidence["description"],
                           uri=evidence.get("uri"))

    def assign(self, assignee: str, prov: Provenance) -> None:
        """Assign to a reviewer."""
        self.trigger_event(self.Assigned, **prov.as_kwargs(), assignee=assignee,
                           previous=self.assignee)

    def change_status(self, status: str, reason: str | None, duplicate_of: str | None,
                      prov: Provenance) -> None:
        """Move through the workflow; every change has a reason."""
        if status not in STATUSES:
            raise ValidationError({"status": [f"Unknown status; one of: {', '.join(STATUSES)}."]})
        allowed = allowed_next(self.status)
        if status not in allowed:
            raise IllegalTransitionError(self.status, status, allowed)
        problems = _text(reason, "reason", 2_000)
        if status == "duplicate":
            if not duplicate_of:
                problems["duplicate_of"] = ["Required when the status is 'duplicate'."]
            elif duplicate_of == str(self.id):
                problems["duplicate_of"] = ["An allegation cannot duplicate itself."]
        elif duplicate_of:
            problems["duplicate_of"] = ["Only allowed when the status is 'duplicate'."]
        require(problems)
        self.trigger_event(self.StatusChanged, **prov.as_kwargs(), from_status=self.status,
                           status=status, reason=reason, duplicate_of=duplicate_of)

    def comment(self, text: str, prov: Provenance) -> None:
        """Add a reviewer's comment."""
        require(_text(text, "text", 20_000))
        self.trigger_event(self.Commented, **prov.as_kwargs(), text=text)

    def record_official_response(self, response: dict[str, Any], prov: Provenance) -> None:
        """Record the authorities' response (denial, acknowledgement, ...)."""
        self.trigger_event(self.OfficialResponseRecorded, **prov.as_kwargs(), response=response)

    def erase_personal_data(self, reason: str, prov: Provenance) -> None:
        """Record the erasure; the application destroys the key in the same transaction."""
        require(_text(reason, "reason", 2_000))
        if self.erased:
            raise ErasedError("This allegation's personal data is already erased.")
        self.trigger_event(self.PersonalDataErased, **prov.as_kwargs(), reason=reason)


def _source_entry(event: Allegation.Event, source: dict[str, Any], n: int) -> dict[str, Any]:
    return {**source, "id": f"s{n}", "version": event.originator_version,
            "recorded_at": event.timestamp.isoformat(), "actor": event.actor,
            "organisation": event.organisation}


def _categories_problems(categories: list[str] | None) -> dict[str, list[str]]:
    if not categories:
        return {"categories": ["Give at least one category code."]}
    unknown = sorted(set(categories) - category_codes())
    if unknown:
        return {"categories": [f"Unknown category code(s): {', '.join(unknown)}."]}
    return {}
