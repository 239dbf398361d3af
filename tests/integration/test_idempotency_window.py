"""Idempotency keys are remembered for an allegation's last KEPT_IDEMPOTENCY_KEYS keyed
writes: retries within that window are answered, not recorded twice, and the state does not
grow with every keyed write (the pages send a key with every form)."""

from __future__ import annotations

from tests.conftest import REPORT, event_count
from tracker.domain import allegation as domain


def test_recent_keys_are_honoured_and_old_ones_forgotten_in_order(services, config,
                                                                  monkeypatch):
    from tracker.bootstrap import build

    monkeypatch.setattr(domain, "KEPT_IDEMPOTENCY_KEYS", 3)
    monitor, _ = services.users.add("M", "monitor", "org-a")
    reviewer, _ = services.users.add("R", "reviewer", "un")
    aid = services.app.submit(monitor, REPORT, "r0").state["id"]
    for i in range(5):
        services.app.comment(reviewer, aid, f"note {i}", f"c{i}", idempotency_key=f"k{i}")
    live = services.app._aggregate(services.app._load(reviewer, aid).id)
    assert list(live.idempotency_keys) == [f"{reviewer.id}|k{i}" for i in (2, 3, 4)]

    before = event_count(services)
    again = services.app.comment(reviewer, aid, "note 4", "retry", idempotency_key="k4")
    assert again.created is False and event_count(services) == before  # answered, not recorded

    # Replayed from the stored events by another process, the window is the same.
    other = build(config)
    try:
        replayed = other.app._aggregate(live.id)
    finally:
        other.close()
    assert list(replayed.idempotency_keys) == list(live.idempotency_keys)
