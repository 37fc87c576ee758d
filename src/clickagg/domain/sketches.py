"""HLL sketches of a cell's visitors: merging and estimating.

Spark's `hll_sketch_agg` and the datasketches library share the format, so a sketch Spark
built in a batch merges here with the one stored in the cell's document. Kept apart from
`cells` so that the operator, which never merges sketches, does not need datasketches.
"""

from __future__ import annotations

from collections.abc import Iterable

from datasketches import hll_sketch, hll_union, tgt_hll_type

LG_K = 12  # Spark's hll_sketch_agg default; about 1.6 % standard error


def merge(sketches: Iterable[bytes | None]) -> bytes | None:
    """The union of HLL sketches (None: there were none)."""
    present = [s for s in sketches if s]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    union = hll_union(LG_K)
    for raw in present:
        union.update(hll_sketch.deserialize(raw))
    return bytes(union.get_result(tgt_hll_type.HLL_8).serialize_compact())


def estimate(sketch: bytes | None) -> float:
    """How many distinct visitors the sketch has seen (0 for none)."""
    return 0.0 if not sketch else float(hll_sketch.deserialize(sketch).get_estimate())
