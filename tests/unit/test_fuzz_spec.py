"""Hostile Aggregation specs for the validator and `clickagg validate`: whatever a file or an
object holds, the answer is a valid Aggregation (with its plan and advisories) or SpecError
whose every issue names a field path and says what is wrong (issue 11, section 5).

Hypothesis runs under the derandomized, database-free profile of tests/conftest.py.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import hostile
from clickagg import errors
from clickagg.domain import plan, specfile, validation
from examples import GOOD

pytestmark = pytest.mark.unit

REFERENCE_PATH = GOOD[0].parent / "shop-kpis.yaml"
REFERENCE: dict[str, Any] = yaml.safe_load(REFERENCE_PATH.read_text())
ROOTS = ("apiVersion", "kind", "metadata", "spec", "(file)")

_HOSTILE_VALUES = hostile.values(
    [
        "",
        "forever",
        "0s",
        "15m",
        "4m",
        "1mo",
        "P1Y2M3W4DT5H6M7S",
        "9" * 5000 + "s",
        "1" + "0" * 400 + "y",
        "99999999999999999999d",
        "\u0663m",  # an Arabic-Indic digit: Python's \d matches it
        "__other__",
        "http://solr:8983/solr",
    ],
    max_leaves=8,
)


def _paths(node: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield here
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _paths(child, (*here, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _paths(child, (*here, index))


REFERENCE_PATHS = [p for p in _paths(REFERENCE) if p]


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    """The reference Aggregation with a few fields replaced, removed or added."""
    obj = copy.deepcopy(REFERENCE)
    for path in draw(st.lists(st.sampled_from(REFERENCE_PATHS), min_size=1, max_size=4)):
        parent: Any = obj
        for part in path[:-1]:
            try:
                parent = parent[part]
            except (KeyError, IndexError, TypeError):
                break  # an earlier mutation replaced the way there
        else:
            last = path[-1]
            action = draw(st.sampled_from(["replace", "remove", "add"]))
            if isinstance(parent, dict) and action == "remove":
                parent.pop(last, None)
            elif isinstance(parent, dict) and action == "add":
                parent[draw(st.text(max_size=12))] = draw(_HOSTILE_VALUES)
            elif isinstance(parent, dict | list) and _holds(parent, last):
                parent[last] = draw(_HOSTILE_VALUES)
    return obj


def _holds(parent: dict[Any, Any] | list[Any], key: Any) -> bool:
    if isinstance(parent, dict):
        return key in parent
    return isinstance(key, int) and 0 <= key < len(parent)


def check_issues(exc: errors.SpecError) -> None:
    assert exc.issues, "a SpecError without issues"
    for issue in exc.issues:
        assert issue.path.startswith(ROOTS), issue
        assert issue.message.strip(), issue
        str(issue).encode("utf-8", "backslashreplace")


def check_object(obj: Any) -> None:
    try:
        aggregation = validation.validate(obj)
    except errors.SpecError as exc:
        check_issues(exc)
        return
    # What `clickagg validate` prints for a valid spec.
    plan.build(aggregation)
    validation.advisories(aggregation)


def check_file(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "spec.yaml"
        path.write_bytes(data)
        try:
            aggregation = specfile.load(path)
        except errors.SpecFileError as exc:
            check_issues(exc)
            assert len(exc.located) == len(exc.issues)
            assert all(item.file == path for item in exc.located)
            return
    plan.build(aggregation)
    validation.advisories(aggregation)


def test_the_reference_passes_the_checks() -> None:
    check_object(copy.deepcopy(REFERENCE))
    check_file(REFERENCE_PATH.read_bytes())


@given(mutated_specs())
def test_any_mutated_spec_is_valid_or_has_located_issues(obj: dict[str, Any]) -> None:
    check_object(obj)


@given(mutated_specs())
@settings(max_examples=100)
def test_any_mutated_spec_file_is_valid_or_has_located_issues(obj: dict[str, Any]) -> None:
    check_file(yaml.safe_dump(obj, allow_unicode=True).encode("utf-8", "surrogatepass"))


@given(
    st.dictionaries(st.sampled_from(["apiVersion", "kind", "metadata", "spec"]), _HOSTILE_VALUES)
)
def test_any_object_is_valid_or_has_located_issues(obj: dict[str, Any]) -> None:
    check_object(obj)


@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "replace")))
@settings(max_examples=100)
def test_any_file_is_valid_or_has_located_issues(data: bytes) -> None:
    check_file(data)


_REFERENCE_TEXT = REFERENCE_PATH.read_text()
HOSTILE_FILES = {
    "empty": b"",
    "invalid UTF-8": b"apiVersion: clickagg.io/v1alpha1\nkind: \xff\xfe\n",
    "UTF-16": _REFERENCE_TEXT.encode("utf-16"),
    "deep flow sequence": b"[" * 5000,
    "deep block mapping": "".join(f"{' ' * i}a:\n" for i in range(2000)).encode(),
    "deep value in the spec": _REFERENCE_TEXT.replace(
        "deletionPolicy", "x: " + "[" * 3000 + "]" * 3000 + "\n  deletionPolicy"
    ).encode(),
    "recursive alias": b"apiVersion: &a [*a]\nspec: &b {x: *b}\n",
    "billion laughs": b"a: &a [x, x, x, x, x, x, x, x, x]\n"
    + b"".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n".encode()
        for i in range(8)
    )
    + b"spec: *i\n",
    "python tag": b"spec: !!python/object/apply:os.system [true]\n",
    "huge retention": _REFERENCE_TEXT.replace("retention: 2y", "retention: 1" + "0" * 400 + "y")
    .replace("retention: 2y", "retention: 1" + "0" * 400 + "y")
    .encode(),
    "huge limit": (
        _REFERENCE_TEXT + "  limits: {maxDocumentsPerDay: 1" + "0" * 400 + "}\n"
    ).encode(),
    "duplicate keys": _REFERENCE_TEXT.replace(
        "kind: Aggregation", "kind: Aggregation\nkind: X"
    ).encode(),
    "metadata is a list": _REFERENCE_TEXT.replace("metadata:", "metadata: [1]\nmetadatb:").encode(),
    "NaN shards": _REFERENCE_TEXT.replace("shards: 2", "shards: .nan").encode(),
    "infinite cardinality": _REFERENCE_TEXT.replace(
        "maxCardinality: 20", "maxCardinality: .inf"
    ).encode(),
}


@pytest.mark.parametrize("data", HOSTILE_FILES.values(), ids=HOSTILE_FILES.keys())
def test_hostile_file_is_valid_or_has_located_issues(data: bytes) -> None:
    check_file(data)
