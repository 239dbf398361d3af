"""The notification rules: who hears of what (SPEC §4), as pure functions."""

from __future__ import annotations

import random
from typing import Any

from tracker.notifications import rules
from tracker.notifications.rules import Facts, LoggedEvent, Subscription

MALI = Facts(organisation="org-a", categories=("child_recruitment_use",), country="ML",
             assignee="rev-1", status="under_review")


def sub(sid: str, owner: str = "rev-1", role: str = "reviewer", org: str = "un-office",
        **kw: Any) -> Subscription:
    return Subscription(id=sid, owner=owner, role=role, organisation=org,
                        **{k: frozenset(v) if isinstance(v, list | set) else v
                           for k, v in kw.items()})


def event(kind: str, position: int = 10, actor: str = "someone", org: str = "org-a",
          **data: Any) -> LoggedEvent:
    return LoggedEvent(position=position, allegation_id="a-1", event_type=kind, actor=actor,
                       organisation=org, data=data)


def submitted(categories: list[str], country: str, **kw: Any) -> LoggedEvent:
    return event("Submitted", categories=categories,
                 incident={"location": {"country": country}}, **kw)


def ids(found: list[Subscription]) -> list[str]:
    return [s.id for s in found]


def test_a_new_allegation_reaches_reviewers_whose_filters_match() -> None:
    subs = [sub("any", owner="r1"), sub("mali", owner="r2", countries=["ML"]),
            sub("niger", owner="r3", countries=["NE"]),
            sub("children", owner="r4", categories=["child_recruitment_use", "child_abduction"]),
            sub("torture-in-mali", owner="r5", categories=["torture_ill_treatment"],
                countries=["ML"]),
            sub("monitor", owner="m1", role="monitor", org="org-a")]
    found = rules.recipients(submitted(["child_recruitment_use"], "ML"), None, subs)
    assert ids(found) == ["any", "mali", "children"]


def test_event_types_filter_can_opt_out_of_new_allegations() -> None:
    subs = [sub("new", owner="r1", event_types=["Submitted", "Assigned"]),
            sub("mine-only", owner="r2", event_types=["Assigned"])]
    assert ids(rules.recipients(submitted(["other"], "ML"), None, subs)) == ["new"]


def test_an_assignment_reaches_every_subscription_of_the_assignee_whatever_the_filters() -> None:
    subs = [sub("web", owner="rev-2", countries=["NE"]),
            sub("mail", owner="rev-2", channel="email", event_types=["Submitted"]),
            sub("other", owner="rev-3")]
    found = rules.recipients(event("Assigned", assignee="rev-2", previous="rev-1"), MALI, subs)
    assert ids(found) == ["web", "mail"]


def test_status_changes_and_new_information_reach_the_assignee() -> None:
    subs = [sub("assignee", owner="rev-1", countries=["NE"]), sub("colleague", owner="rev-9")]
    for kind, data in [("StatusChanged", {"status": "verified", "reason": "r"}),
                       ("InformationAdded", {"text": "more"}),
                       ("SourceAdded", {"source": {"type": "media"}})]:
        assert ids(rules.recipients(event(kind, **data), MALI, subs)) == ["assignee"], kind


def test_events_on_an_unassigned_allegation_or_of_other_kinds_reach_nobody() -> None:
    subs = [sub("s1", owner="rev-1")]
    unassigned = Facts("org-a", ("other",), "ML")
    assert rules.recipients(event("StatusChanged", status="under_review"), unassigned, subs) == []
    assert rules.recipients(event("Commented", text="x"), MALI, subs) == []
    assert rules.recipients(event("EvidenceAttached"), MALI, subs) == []


def test_a_request_for_information_reaches_the_submitting_organisations_monitors() -> None:
    subs = [sub("assignee", owner="rev-1"),
            sub("mona", owner="m1", role="monitor", org="org-a"),
            sub("other-org", owner="m2", role="monitor", org="org-b")]
    ask = event("StatusChanged", status="needs_information", reason="which village?")
    assert ids(rules.recipients(ask, MALI, subs)) == ["assignee", "mona"]
    back = event("StatusChanged", status="under_review", reason="answered")
    assert ids(rules.recipients(back, MALI, subs)) == ["assignee"]


def test_monitors_never_hear_of_new_allegations_or_assignments() -> None:
    subs = [sub("mona", owner="m1", role="monitor", org="org-a")]
    assert rules.recipients(submitted(["other"], "ML"), None, subs) == []
    assert rules.recipients(event("Assigned", assignee="m1"), MALI, subs) == []


def test_nobody_is_notified_of_their_own_action() -> None:
    subs = [sub("self", owner="rev-1")]
    assert rules.recipients(event("Assigned", actor="rev-1", assignee="rev-1"), MALI, subs) == []
    assert rules.recipients(event("StatusChanged", actor="rev-1", status="verified"), MALI,
                            subs) == []


def test_a_subscription_hears_only_of_events_recorded_while_it_existed() -> None:
    subs = [sub("late", owner="r1", created_position=11),
            sub("gone", owner="r2", created_position=0, deleted_position=10),
            sub("live", owner="r3", created_position=10, deleted_position=11)]
    assert ids(rules.recipients(submitted(["other"], "ML"), None, subs)) == ["live"]


def test_facts_follow_the_allegation_through_its_events() -> None:
    facts = rules.facts_after(None, submitted(["other", "torture_ill_treatment"], "ML"))
    assert facts == Facts("org-a", ("other", "torture_ill_treatment"), "ML")
    facts = rules.facts_after(facts, event("Assigned", org="un-office", assignee="rev-7"))
    assert facts is not None and facts.assignee == "rev-7" and facts.organisation == "org-a"
    facts = rules.facts_after(facts, event("StatusChanged", status="under_review"))
    assert facts is not None and facts.status == "under_review"
    assert rules.facts_after(None, event("Commented", text="x")) is None


def test_delivery_ids_are_deterministic_and_distinct() -> None:
    assert rules.delivery_id(3, "s") == rules.delivery_id(3, "s")
    pairs = {(p, s) for p in range(50) for s in ("a", "b", "c")}
    assert len({rules.delivery_id(p, s) for p, s in pairs}) == len(pairs)


def test_each_subscription_is_chosen_at_most_once_per_event() -> None:
    rng = random.Random(7)
    kinds = ["Submitted", "Assigned", "StatusChanged", "InformationAdded", "SourceAdded"]
    for _ in range(200):
        subs = [sub(f"s{i}", owner=rng.choice(["rev-1", "rev-2", "m1"]),
                    role=rng.choice(["reviewer", "monitor"]), org=rng.choice(["org-a", "x"]))
                for i in range(6)]
        kind = rng.choice(kinds)
        e = (submitted(["other"], "ML") if kind == "Submitted" else
             event(kind, assignee="rev-1", status=rng.choice(["needs_information", "verified"])))
        found = ids(rules.recipients(e, None if kind == "Submitted" else MALI, subs))
        assert len(found) == len(set(found))
