"""A cell document's HLL sketch as Solr hands it back: the one place that decodes it."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from clickagg.domain import cells


def of(document: Mapping[str, Any] | None) -> bytes | None:
    """The sketch a stored document holds (base64 in JSON answers), or None."""
    value = (document or {}).get(cells.SKETCH_FIELD)
    if value is None:
        return None
    if isinstance(value, list):  # a stored binary field may come back as a one-item list
        value = value[0]
    return base64.b64decode(value) if isinstance(value, str) else bytes(value)
