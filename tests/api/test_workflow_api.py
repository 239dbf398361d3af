"""Every legal and illegal transition of the workflow, through the API."""

from __future__ import annotations

from itertools import product

import pytest

from tests.api.helpers import assert_problem, change, submit
from tests.conftest import event_count
from tests.unit.test_workflow import PATHS
from tracker.domain.values import STATUSES, TRANSITIONS


@pytest.mark.parametrize(("current", "target"), list(product(STATUSES, STATUSES)))
def test_transition_through_the_api(client, monitor, reviewer, report, services, current, target):
    aid = submit(client, monitor, report)["id"]
    original = submit(client, monitor, report)["id"]
    for step in PATHS[current]:
        extra = {"duplicate_of": original} if step == "duplicate" else {}
        assert change(client, reviewer, aid, step, **extra).status_code == 200
    before = event_count(services)
    extra = {"duplicate_of": original} if target == "duplicate" else {}
    r = change(client, reviewer, aid, target, **extra)
    if target in TRANSITIONS[current]:
        assert r.status_code == 200, r.get_json()
        assert r.get_json()["status"] == target
        assert int(r.headers["X-Tracker-Position"]) == before
        assert event_count(services) == before + 1
    else:
        body = assert_problem(r, 409)
        assert body["allowed"] == list(TRANSITIONS[current])
        assert event_count(services) == before
        got = client.get(f"/v1/allegations/{aid}", headers=reviewer.headers).get_json()
        assert got["status"] == current
