"""Verification builds the canonical bytes of a whole page at once: always the very bytes
`canonical_bytes` (the leaf's definition) gives each record."""

from __future__ import annotations

import json
from datetime import UTC

from hypothesis import given
from hypothesis import strategies as st

from tracker.audit.log import canonical_bytes, canonical_page, recorded_at_all, recorded_at_of

_text = st.one_of(st.sampled_from(["Allegation.Submitted", "2026-11-24T17:10:45.854973+00:00",
                                   "0b6f1c8e-8f8a-4a53-9a55-4f3c5d6e7f80"]),
                  st.text(max_size=12))
_record = st.tuples(st.integers(0, 10**9), _text, st.integers(1, 10**6), _text, _text,
                    st.binary(min_size=32, max_size=32))


@given(st.lists(_record, max_size=8))
def test_a_page_gives_each_records_canonical_bytes(records):
    columns = list(zip(*records, strict=True)) or [()] * 6
    assert canonical_page(*columns) == [canonical_bytes(*r) for r in records]


def test_a_record_that_needs_escaping_is_escaped_like_json():
    page = canonical_page([0, 1], ["a", 'quo"te'], [1, 2], ["t", "t\\"], ["r", "é"],
                          [bytes(32), bytes(32)])
    assert [json.loads(b) for b in page][1][1:5] == ['quo"te', 2, "t\\", "é"]
    assert all(b.isascii() for b in page)


_stamp = st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())


@given(st.lists(st.tuples(_stamp, st.booleans()), max_size=6))
def test_a_pages_timestamps_are_each_payloads_own(stamps):
    # As the mapper writes a payload (timestamp first), or with the timestamp elsewhere.
    states = [json.dumps({"timestamp": {"_type_": "datetime_iso", "_data_": s}, "x": 1}
                         if lead else {"x": 1, "timestamp": s},
                         separators=(",", ":")).encode() for s, lead in stamps]
    assert recorded_at_all(states) == [recorded_at_of(s) for s in states] == [
        s for s, _lead in stamps]
