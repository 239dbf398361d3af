"""Replay as of a time between two events returns exactly the earlier state (random histories)."""

from __future__ import annotations

import itertools
from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import REPORT
from tracker.audit.replay import replay
from tracker.domain.errors import TrackerError
from tracker.domain.values import TRANSITIONS

COMMANDS = st.lists(st.sampled_from(["status", "comment", "assign", "info", "new"]),
                    min_size=1, max_size=8)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(commands=COMMANDS, choice=st.randoms(use_true_random=False))
def test_as_of_between_two_events_is_the_earlier_state(services, commands, choice):
    admin, _ = services.users.add("A", "admin", "hq")
    reviewer, _ = services.users.add("R", "reviewer", "un")
    monitor, _ = services.users.add("M", "monitor", "org-a")
    app = services.app
    ids = [app.submit(monitor, REPORT, "r").state["id"]]
    snapshots = [(ids[0], app.get(admin, ids[0]))]
    for command in commands:
        aid = choice.choice(ids)
        current = app.get(admin, aid)
        try:
            if command == "status":
                target = choice.choice([s for s in TRANSITIONS[current["status"]]
                                        if s != "duplicate"])
                app.change_status(reviewer, aid, target, "because", None, "r")
            elif command == "comment":
                app.comment(reviewer, aid, "a comment", "r")
            elif command == "assign":
                app.assign(admin, aid, reviewer.id, "r")
            elif command == "info":
                app.add_information(monitor, aid, "more", None, None, "r")
            else:
                aid = app.submit(monitor, REPORT, "r").state["id"]
                ids.append(aid)
        except TrackerError:
            continue
        snapshots.append((aid, app.get(admin, aid)))
    for (aid_a, before), (_aid_b, after) in itertools.pairwise(snapshots):
        t0 = datetime.fromisoformat(before["updated_at"])
        t1 = datetime.fromisoformat(after["updated_at"])
        if t1 <= t0:
            continue  # the same microsecond: no moment lies between them
        between = t0 + (t1 - t0) / 2
        assert app.get(admin, aid_a, as_of=between) == before
        # The whole-log replay agrees for that allegation.
        states = {s["id"]: s for s in replay(app, between)}
        assert states[aid_a]["version"] == before["version"]
        assert states[aid_a]["status"] == before["status"]
