"""Read Aggregation YAML files and point each spec issue at its line.

A field path like `spec.levels[1].retention` becomes `shop.yaml:14`, so a person can
jump straight to the mistake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from clickagg import errors
from clickagg.domain import model, validation

_PART = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True)
class Located:
    """A spec issue with the file and line it belongs to."""

    file: Path
    line: int | None
    issue: errors.SpecIssue

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        return f"{where}: {self.issue}"


class SpecFileError(errors.SpecError):
    """SpecError whose issues also carry their file and line."""

    def __init__(self, located: list[Located]) -> None:
        super().__init__([item.issue for item in located])
        self.located = located

    def __str__(self) -> str:
        return "\n".join(str(item) for item in self.located)


def load(path: Path) -> model.Aggregation:
    """Parse and validate one Aggregation file; SpecFileError names file and lines."""
    text = path.read_text()
    try:
        node = yaml.compose(text)
        obj = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise SpecFileError(
            [Located(path, line, errors.SpecIssue("(file)", f"not valid YAML: {exc}"))]
        ) from None
    if not isinstance(obj, dict):
        raise SpecFileError(
            [Located(path, 1, errors.SpecIssue("(file)", "expected one Aggregation object"))]
        )
    try:
        return validation.validate(obj)
    except errors.SpecError as exc:
        raise SpecFileError([Located(path, line_of(node, i.path), i) for i in exc.issues]) from None


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


def load_object(path: Path) -> dict[str, Any]:
    """The raw object of a YAML file (for applying it to a cluster)."""
    obj = yaml.safe_load(path.read_text())
    if not isinstance(obj, dict):
        raise errors.SpecError([errors.SpecIssue(str(path), "expected one YAML object")])
    return obj
