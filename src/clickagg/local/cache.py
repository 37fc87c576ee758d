"""Where built tools, jars and run state live: outside the repo, keyed by version.

A second `make test` finds everything here and starts in seconds.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The cache root: $CLICKAGG_CACHE, or ~/.cache/clickagg."""
    root = Path(os.environ.get("CLICKAGG_CACHE", Path.home() / ".cache" / "clickagg"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def tool_dir(name: str, version: str) -> Path:
    """A per-tool, per-version directory, e.g. tools/helm-v3.22.0."""
    path = cache_root() / "tools" / f"{name}-{version}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_dir(name: str) -> Path:
    """State of a running engine (pid file, logs, data), e.g. run/solr.

    $CLICKAGG_RUN_DIR separates the test stack from a developer's `local up` stack.
    """
    base = Path(os.environ.get("CLICKAGG_RUN_DIR", cache_root() / "run"))
    path = base / name
    path.mkdir(parents=True, exist_ok=True)
    return path
