"""The request body's nesting limit (``jsonparse.nesting_exceeds``), against a plain recursive depth."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from codexd.jsonparse import MAX_DEPTH as MAX_JSON_DEPTH
from codexd.jsonparse import nesting_exceeds

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3),
    max_leaves=40,
)


def depth(value: Any) -> int:
    """Lists and objects nested in ``value`` (a scalar has depth 0)."""
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


@given(json_values, st.integers(min_value=0, max_value=12))
def test_nesting_exceeds_is_depth_over_the_limit(value: Any, limit: int) -> None:
    assert nesting_exceeds(value, limit) == (depth(value) > limit)


def test_the_limit_is_exact_for_deep_bodies() -> None:
    for kind in ("[", '{"a":'):
        closing = "]" if kind == "[" else "}"
        at_limit = json.loads(kind * MAX_JSON_DEPTH + ("" if kind == "[" else "1") + closing * MAX_JSON_DEPTH)
        over = json.loads(kind * (MAX_JSON_DEPTH + 1) + ("" if kind == "[" else "1") + closing * (MAX_JSON_DEPTH + 1))
        assert not nesting_exceeds(at_limit, MAX_JSON_DEPTH)
        assert nesting_exceeds(over, MAX_JSON_DEPTH)
