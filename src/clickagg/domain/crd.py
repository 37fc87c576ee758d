"""The Aggregation CRD, derived from the pydantic spec model (never written by hand).

Pydantic's JSON Schema is turned into a Kubernetes structural schema: references are
inlined, optional unions become the plain type, and titles go; descriptions stay, so
`kubectl explain aggregation.spec.levels` documents every field.
"""

from __future__ import annotations

from typing import Any

import pydantic

from clickagg.domain import spec, status

CRD_NAME = f"{spec.PLURAL}.{spec.API_GROUP}"
_KEPT_KEYS = (
    "description",
    "type",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "default",
    "format",
)

Schema = dict[str, Any]


def structural_schema(model: type[pydantic.BaseModel]) -> Schema:
    """The model's JSON Schema as a Kubernetes structural OpenAPI v3 schema."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _convert(raw, raw.get("$defs", {}))


def _convert(node: Schema, defs: Schema) -> Schema:
    node = _resolve(node, defs)
    out: Schema = {k: node[k] for k in _KEPT_KEYS if k in node}
    if out.get("default", "") is None:
        del out["default"]
    if "const" in node:
        out["enum"] = [node["const"]]
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if node.get("type") == "object" or "properties" in node:
        out["type"] = "object"
        properties = node.get("properties", {})
        out["properties"] = {name: _convert(sub, defs) for name, sub in properties.items()}
        if node.get("required"):
            out["required"] = list(node["required"])
    if node.get("type") == "array":
        out["items"] = _convert(node.get("items", {}), defs)
    return out


def _resolve(node: Schema, defs: Schema) -> Schema:
    """Inline `$ref` and collapse `anyOf: [X, null]` into X, keeping the outer description."""
    outer = {k: v for k, v in node.items() if k not in ("$ref", "anyOf")}
    if "$ref" in node:
        target = defs[node["$ref"].split("/")[-1]]
        return _resolve({**target, **outer}, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express a union of {len(options)} types structurally")
        return _resolve({**options[0], **outer}, defs)
    return node


def definition() -> Schema:
    """The whole CustomResourceDefinition object."""
    status_schema = structural_schema(status.AggregationStatus)
    # kopf keeps its own progress in status; let it through.
    status_schema["x-kubernetes-preserve-unknown-fields"] = True
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {"app.kubernetes.io/part-of": "clickagg"},
        },
        "spec": {
            "group": spec.API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": spec.KIND,
                "listKind": f"{spec.KIND}List",
                "plural": spec.PLURAL,
                "singular": spec.KIND.lower(),
                "shortNames": list(spec.SHORT_NAMES),
                "categories": ["clickagg"],
            },
            "versions": [
                {
                    "name": spec.API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _printer_columns(),
                    "schema": {"openAPIV3Schema": _root_schema(status_schema)},
                }
            ],
        },
    }


def _root_schema(status_schema: Schema) -> Schema:
    return {
        "type": "object",
        "description": "An Aggregation turns a clickstream into KPIs per dimension "
        "combination and time level, kept in SolrCloud with a retention per level.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "The API version, clickagg.io/v1alpha1.",
            },
            "kind": {"type": "string", "description": "Aggregation."},
            "metadata": {"type": "object"},
            "spec": structural_schema(spec.AggregationSpec),
            "status": status_schema,
        },
    }


def _printer_columns() -> list[Schema]:
    return [
        {
            "name": "Levels",
            "type": "string",
            "jsonPath": ".status.levelNames",
            "description": "Granularities, finest first.",
        },
        {
            "name": "Ready",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
            "description": "Whether collections and jobs are in place and streaming runs.",
        },
        {
            "name": "Rollups",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="RollupsCurrent")].status',
            "description": "Whether every coarser level is within one bucket of its input.",
        },
        {
            "name": "Lag",
            "type": "string",
            "jsonPath": ".status.lag",
            "description": "How far the finest level trails the newest event.",
        },
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]


def undocumented_fields(schema: Schema, path: str = "") -> list[str]:
    """Paths of properties without a description (the drift test wants none)."""
    missing = []
    for name, sub in schema.get("properties", {}).items():
        here = f"{path}.{name}" if path else name
        if name != "metadata" and not sub.get("description"):
            missing.append(here)
        missing += undocumented_fields(sub, here)
    if "items" in schema:
        missing += undocumented_fields(schema["items"], f"{path}[]")
    return missing
