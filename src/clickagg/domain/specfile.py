"""Read Aggregation YAML files and point each spec issue at its line.

A field path like `spec.levels[1].retention` becomes `shop.yaml:14`, so a person can
jump straight to the mistake. Only `load` reads a file (the one it is given); the rest is pure.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from clickagg import errors
from clickagg.domain import model, validation

_PART = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def load(path: Path) -> model.Aggregation:
    """Read, parse and validate one Aggregation file; SpecFileError names file and lines."""
    return parse(path.read_text(), path)


def parse(text: str, path: Path) -> model.Aggregation:
    """Parse and validate an Aggregation file's text; SpecFileError names `path` and lines."""
    try:
        node = yaml.compose(text)
        obj = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise errors.SpecFileError(
            [errors.Located(path, line, errors.SpecIssue("(file)", f"not valid YAML: {exc}"))]
        ) from None
    if not isinstance(obj, dict):
        raise errors.SpecFileError(
            [errors.Located(path, 1, errors.SpecIssue("(file)", "expected one Aggregation object"))]
        )
    try:
        return validation.validate(obj)
    except errors.SpecError as exc:
        located = [errors.Located(path, line_of(node, i.path), i) for i in exc.issues]
        raise errors.SpecFileError(located) from None


def line_of(root: yaml.Node | None, path: str) -> int | None:
    """The 1-based line of the deepest node along a dotted/indexed path that exists."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for key, index in _PART.findall(path):
        node = _child(node, key, int(index) if index else None)
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def _child(node: yaml.Node | None, key: str, index: int | None) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and index is None:
        for key_node, value_node in node.value:
            if key_node.value == key:
                return value_node  # type: ignore[no-any-return]
    if isinstance(node, yaml.SequenceNode) and index is not None and index < len(node.value):
        return node.value[index]  # type: ignore[no-any-return]
    return None
