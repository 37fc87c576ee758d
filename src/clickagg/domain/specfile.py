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
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise errors.SpecFileError(
            [_file_issue(path, line, f"not valid UTF-8 (byte {exc.start})")]
        ) from None
    return parse(text, path)


def parse(text: str, path: Path) -> model.Aggregation:
    """Parse and validate an Aggregation file's text; SpecFileError names `path` and lines."""
    try:
        node = yaml.compose(text)
        obj = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise errors.SpecFileError([_file_issue(path, line, f"not valid YAML: {exc}")]) from None
    except RecursionError:
        # PyYAML recurses per nesting level; a file of '[' would exhaust the stack.
        raise errors.SpecFileError([_file_issue(path, None, "nested too deeply")]) from None
    if not isinstance(obj, dict):
        raise errors.SpecFileError([_file_issue(path, 1, "expected one Aggregation object")])
    repeated = [
        errors.Located(path, key.start_mark.line + 1, errors.SpecIssue(where, "appears twice"))
        for where, key in _repeated_keys(node, "", set())
    ]
    try:
        aggregation = validation.validate(obj)
    except errors.SpecError as exc:
        located = [errors.Located(path, line_of(node, i.path), i) for i in exc.issues]
        raise errors.SpecFileError(repeated + located) from None
    if repeated:
        # YAML keeps the last of two equal keys; a file saying two things is refused instead.
        raise errors.SpecFileError(repeated)
    return aggregation


def _file_issue(path: Path, line: int | None, message: str) -> errors.Located:
    return errors.Located(path, line, errors.SpecIssue("(file)", message))


def _repeated_keys(
    node: yaml.Node | None, where: str, visited: set[int]
) -> list[tuple[str, yaml.Node]]:
    """(field path, key node) of every second occurrence of a key in one mapping."""
    found: list[tuple[str, yaml.Node]] = []
    # An alias is the node it names: walk each node once, so cycles end and shared ones
    # (the "billion laughs") are not walked again.
    if id(node) in visited:
        return found
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else ""
            inner = f"{where}.{key}" if where else key
            if key and key != "<<" and key in seen:
                found.append((inner, key_node))
            seen.add(key)
            found.extend(_repeated_keys(value_node, inner, visited))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found.extend(_repeated_keys(item, f"{where}[{index}]", visited))
    return found


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
