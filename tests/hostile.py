"""Hostile JSON-like values for the fuzz tests of the event parser and the spec validator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

#: Past this many digits int() is slow; past 4300 Python refuses (json.dumps too).
BIG_INT = 10**400


def values(samples: Sequence[str], max_leaves: int = 10) -> st.SearchStrategy[Any]:
    """Nulls, booleans, huge integers, NaN and infinities, text with lone surrogates (JSON
    writes them as \\ud800 escapes), the given sample strings, and lists and objects of
    them."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-BIG_INT, max_value=BIG_INT),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(alphabet=st.characters(codec=None), max_size=40),
        st.sampled_from(list(samples)),
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
        max_leaves=max_leaves,
    )
