"""The workflow is enforced by the aggregate: every legal move works, every illegal one is refused
and records nothing."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from itertools import product

import pytest

from tracker.domain.allegation import Allegation
from tracker.domain.errors import IllegalTransitionError, ValidationError
from tracker.domain.values import STATUSES, TRANSITIONS, Provenance

MONITOR = Provenance("m1", "monitor", "org-a", "req-1")
REVIEWER = Provenance("r1", "reviewer", "un", "req-2")

# A shortest legal path from `received` to each status.
PATHS = {
    "received": [],
    "under_review": ["under_review"],
    "needs_information": ["under_review", "needs_information"],
    "verified": ["under_review", "verified"],
    "unverified": ["under_review", "unverified"],
    "rejected": ["rejected"],
    "duplicate": ["duplicate"],
    "closed": ["rejected", "closed"],
}


def new_allegation() -> Allegation:
    report = {"summary": "s", "description": "d", "categories": ["other"],
              "incident": {"date": "2018-01-01", "date_precision": "year",
                           "location": {"country": "ML"}},
              "source": {"type": "media", "reliability": "C", "credibility": 3,
                         "description": "press"}}
    return Allegation.submit(uuid.uuid4(), report, None, "fp", MONITOR)


def move(a: Allegation, status: str) -> None:
    dup = str(uuid.uuid4()) if status == "duplicate" else None
    a.change_status(status, "because the evidence says so", dup, REVIEWER)


def at(status: str) -> Allegation:
    a = new_allegation()
    for step in PATHS[status]:
        move(a, step)
    return a


@pytest.mark.parametrize(("current", "target"), list(product(STATUSES, STATUSES)))
def test_every_transition_is_allowed_or_refused_as_the_workflow_says(current: str,
                                                                    target: str) -> None:
    a = at(current)
    version = a.version
    if target in TRANSITIONS[current]:
        move(a, target)
        assert a.status == target
        assert a.version == version + 1
        assert type(a.pending_events[-1]).__name__ == "StatusChanged"
    else:
        with pytest.raises(IllegalTransitionError) as refused:
            move(a, target)
        assert refused.value.allowed == list(TRANSITIONS[current])
        assert a.status == current
        assert a.version == version


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_a_status_change_without_a_reason_is_refused(reason: str | None) -> None:
    a = at("received")
    with pytest.raises(ValidationError) as refused:
        a.change_status("under_review", reason, None, REVIEWER)
    assert "reason" in refused.value.errors
    assert a.version == 1


def test_duplicate_needs_the_original_and_not_itself() -> None:
    a = at("received")
    with pytest.raises(ValidationError) as refused:
        a.change_status("duplicate", "same incident", None, REVIEWER)
    assert "duplicate_of" in refused.value.errors
    with pytest.raises(ValidationError):
        a.change_status("duplicate", "same incident", str(a.id), REVIEWER)
    original = str(uuid.uuid4())
    a.change_status("duplicate", "same incident", original, REVIEWER)
    assert a.duplicate_of == original


def test_every_event_carries_the_servers_provenance() -> None:
    a = at("under_review")
    a.comment("a note", REVIEWER)
    for event in a.pending_events:
        assert event.actor in ("m1", "r1")
        assert event.request_id in ("req-1", "req-2")
        assert event.organisation in ("org-a", "un")
    assert a.pending_events[0].actor_role == "monitor"


def test_replaying_the_events_rebuilds_the_same_state() -> None:
    a = at("closed")
    a.assign("r1", REVIEWER)
    events = list(a.pending_events)
    copy = None
    for event in events:
        copy = event.mutate(copy)
    assert copy is not None
    assert (copy.status, copy.version, copy.assignee) == (a.status, a.version, a.assignee)


def test_the_state_counts_comments_information_and_evidence_without_keeping_them() -> None:
    a = at("under_review")
    for n in range(3):
        a.comment(f"note {n}", REVIEWER)
    a.add_information("more", None, None, MONITOR)
    a.add_information(None, {"type": "media", "reliability": "B", "credibility": 2,
                             "description": "radio"}, None, REVIEWER)  # a source alone
    a.attach_evidence({"sha256": "AB" * 32, "media_type": "image/png", "size": 1,
                       "description": "map"}, MONITOR)
    assert (a.comments_total, a.information_total, a.evidence_total) == (3, 1, 1)
    assert [s["id"] for s in a.sources] == ["s1", "s2"]
    assert not {"comments", "information", "evidence"} & set(vars(a))
    assert a.pending_events[-1].sha256 == "ab" * 32  # the content stays in the events


def test_a_version_1_snapshot_state_is_upcast_to_counts() -> None:
    state = {"status": "received", "comments": [{"text": "a"}, {"text": "b"}],
             "information": [{"text": "c"}], "evidence": []}
    Allegation.upcast_v1_v2(state)
    assert state == {"status": "received", "comments_total": 2, "information_total": 1,
                     "evidence_total": 0}


def test_provenance_sets_every_one_of_its_fields_on_the_events() -> None:
    assert REVIEWER.as_kwargs() == asdict(REVIEWER)
    keyed = Provenance("r1", "reviewer", "un", "req-3", "key-1")
    assert keyed.as_kwargs() == asdict(keyed)
