"""The examples as test fixtures: every file in examples/ and examples/bad/ is a case."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
GOOD = sorted((ROOT / "examples").glob("*.yaml"))
BAD = sorted((ROOT / "examples" / "bad").glob("*.yaml"))


def one_level(namespace: str, name: str, collection_prefix: str) -> dict[str, Any]:
    """examples/one-level.yaml under another name, namespace and collection prefix."""
    obj: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "one-level.yaml").read_text())
    obj["metadata"].update(name=name, namespace=namespace)
    obj["spec"]["source"]["files"]["path"] = f"/data/landing/{name}"
    obj["spec"]["solr"]["collectionPrefix"] = collection_prefix
    return obj


@dataclass(frozen=True)
class BadExample:
    """A bad example and the messages its header promises."""

    path: Path
    expect_validate: str
    expect_apiserver: str | None


def bad_example(path: Path) -> BadExample:
    text = path.read_text()
    validate = re.search(r"^# expect-validate: (.+)$", text, re.M)
    apiserver = re.search(r"^# expect-apiserver: (.+)$", text, re.M)
    assert validate, f"{path} lacks an '# expect-validate:' header"
    return BadExample(path, validate.group(1), apiserver.group(1) if apiserver else None)
