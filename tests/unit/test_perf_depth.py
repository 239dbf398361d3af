"""The level-by-level JSON depth check measures what the former stack walk measured."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from api import MAX_JSON_DEPTH, _depth


def _reference(value: Any, limit: int) -> int:
    """The former implementation (a stack of (item, depth) pairs)."""
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((x, d + 1) for x in item.values())
        elif isinstance(item, list):
            stack.extend((x, d + 1) for x in item)
    return deepest


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner,
                                                                 max_size=3),
    max_leaves=40,
)


@settings(max_examples=300)
@given(JSON, st.integers(min_value=1, max_value=8))
def test_same_depth_as_before(value: Any, limit: int) -> None:
    assert _depth(value, limit) == _reference(value, limit)


def test_deep_nesting_stops_one_level_past_the_limit() -> None:
    value: Any = 1
    for i in range(200):
        value = [value] if i % 2 else {"k": value}
    assert _depth(value, MAX_JSON_DEPTH) == _reference(value, MAX_JSON_DEPTH) == MAX_JSON_DEPTH + 1
    assert _depth([], MAX_JSON_DEPTH) == _depth({}, MAX_JSON_DEPTH) == _depth(3, 5) == 1
