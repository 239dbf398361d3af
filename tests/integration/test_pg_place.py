"""PostgreSQL places leaves in the server (`tracker_place`): each leaf, and each tree node,
must be the very hash the Python definition gives (`tracker.audit.log`, RFC 9162), whatever
text the record holds."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker.audit import merkle
from tracker.audit.log import canonical_bytes, node_in
from tracker.bootstrap import Tracker

# PostgreSQL text holds no NUL and no lone surrogate; anything else may come.
_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
                max_size=20)


def _postgres_only(services: Tracker) -> None:
    if services.app.db.dialect != "postgres":
        pytest.skip("leaves are placed in the server on PostgreSQL only")


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=150,
          deadline=None)
@given(text=st.one_of(_text, st.sampled_from(['quo"te', "back\\slash", "tab\t", "\x7f",
                                              "é", "\U0001f600", "\x1f\n\r\b\f"])))
def test_strings_are_written_as_python_json_writes_them(services, text):
    _postgres_only(services)
    with services.app.db.read() as cur:
        written = cur.scalar("SELECT tracker_json_string(?)", (text,))
    assert written == json.dumps(text, ensure_ascii=True)


def test_leaves_and_nodes_placed_in_the_server_are_the_python_ones(services):
    _postgres_only(services)
    odd = [("a3c1", "Allegation.\"Quoted\"", "2026-11-24T00:00:00+00:00"),
           ("é-id", "topic\\with\tcontrol", "2026-11-24T00:00:01+00:00"),
           ("id-3", "Allegation.Submitted", "2026-11-24T00:00:02+00:00 \U0001f600")]
    payloads = [bytes([i]) * 32 for i in range(len(odd))]
    with services.app.db.tx() as cur:
        for nid, ((aid, topic, recorded_at), payload) in enumerate(zip(odd, payloads,
                                                                       strict=True), 1):
            cur.execute("INSERT INTO pending_leaves (notification_id, allegation_id, version,"
                        " topic, recorded_at, payload_sha256) VALUES (?, ?, ?, ?, ?, ?)",
                        (nid, aid, nid, topic, recorded_at, payload))
    assert services.app.recorder.sequence([1, 2, 3]) == {1: 0, 2: 1, 3: 2}

    tree = merkle.IncrementalTree()
    with services.app.db.read() as cur:
        rows = cur.execute("SELECT position, leaf_hash, nodes FROM audit_leaves"
                           " ORDER BY position").fetchall()
    for row, (aid, topic, recorded_at), payload in zip(rows, odd, payloads, strict=True):
        position = int(row["position"])
        leaf = merkle.leaf_hash(canonical_bytes(position, aid, position + 1, topic,
                                                recorded_at, payload))
        completed = tree.append(leaf)
        assert bytes(row["leaf_hash"]) == leaf == node_in(row["nodes"], 0)
        assert [node_in(row["nodes"], level) for level, _i, _h in completed] == [
            h for _l, _i, h in completed]
    with services.app.db.read() as cur:
        assert cur.scalar("SELECT COUNT(*) FROM pending_leaves") == 0
