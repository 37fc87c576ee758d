"""docs/spec.md, rendered from the same structural schema the CRD carries."""

from __future__ import annotations

from typing import Any

from clickagg.domain import crd, spec

_HEADER = """# Aggregation spec reference

Generated from `clickagg.domain.spec` by `make crd`; a test fails when this file drifts.
Durations take ISO 8601 (`PT15M`, `P30D`, `P4M`) or short forms (`15m`, `1h`, `30d`,
`4mo`, `2y`): in the short form `m` is minutes and `mo` is months. `kubectl explain
aggregation.spec` shows the same text.

| Field | Type | Default | Description |
|---|---|---|---|
"""


def render() -> str:
    rows: list[str] = []
    _walk(crd.structural_schema(spec.AggregationSpec), "spec", rows)
    return _HEADER + "\n".join(rows) + "\n"


def _walk(schema: dict[str, Any], path: str, rows: list[str]) -> None:
    for name, sub in schema.get("properties", {}).items():
        here = f"{path}.{name}"
        rows.append(
            f"| `{here}` | {_type(sub)} | {_default(sub)} | {_cell(sub.get('description', ''))} |"
        )
        _walk(sub, here, rows)
        if "items" in sub:
            _walk(sub["items"], f"{here}[]", rows)


def _type(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " \\| ".join(f"`{value}`" for value in schema["enum"])
    if schema.get("type") == "array":
        return f"list of {_type(schema.get('items', {}))}"
    return str(schema.get("type", "any"))


def _default(schema: dict[str, Any]) -> str:
    return f"`{schema['default']}`" if "default" in schema else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
