"""The sessionizer as Spark runs it: one call per visitor and micro-batch, state as JSON.

`applyInPandasWithState` hands the state over with the rows (no round trip per access),
which is why it is used rather than the newer transformWithState API.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from clickagg.domain import buckets, model, sessions

STATE_SCHEMA = "visitor_state string"
OUTPUT_COLUMNS = ("bucket_ms", "dims", "visitor", "bot", *sessions.FIELDS)
OUTPUT_SCHEMA = "bucket_ms long, dims array<string>, visitor string, bot boolean, " + ", ".join(
    f"{name} double" for name in sessions.FIELDS
)


def config_of(aggregation: model.Aggregation) -> sessions.Config:
    return sessions.Config(
        granularity=aggregation.finest.granularity,
        timeout_ms=int(aggregation.session_timeout.approx_seconds * 1000),
        dimensions=tuple(
            sessions.DimensionSource(d.name, d.field, d.scope) for d in aggregation.dimensions
        ),
    )


@dataclass(frozen=True)
class Sessionizer:
    """The function Spark calls per visitor; picklable, holds only configuration."""

    config: sessions.Config

    def __call__(
        self, key: tuple[Any, ...], frames: Iterator[pd.DataFrame], state: Any
    ) -> Iterator[pd.DataFrame]:
        visitor = str(key[0])
        arrived: list[sessions.Counted] = []
        bot_rows: list[dict[str, Any]] = []
        for frame in frames:
            for record in frame.to_dict("records"):
                if record["bot"]:
                    bot_rows.append(self._bot_fact(visitor, int(record["ts_ms"])))
                else:
                    arrived.append(self._counted(record))
        current = sessions.load_state(state.get[0]) if state.exists else sessions.VisitorState()
        watermark = int(state.getCurrentWatermarkMs())
        facts, next_close = sessions.advance(current, arrived, watermark, self.config)
        if next_close is None:
            state.remove()
        else:
            state.update((sessions.dump_state(current),))
            state.setTimeoutTimestamp(max(next_close, watermark + 1))
        rows = [self._row(visitor, fact) for fact in facts] + bot_rows
        if rows:
            yield pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))

    def _counted(self, record: dict[str, Any]) -> sessions.Counted:
        revenue = record.get("revenue")
        return sessions.Counted(
            ts_ms=int(record["ts_ms"]),
            event_id=str(record["event_id"]),
            type=str(record["type"]),
            revenue=0.0 if revenue is None or pd.isna(revenue) else float(revenue),
            values=sessions.values_of(record, self.config),
        )

    def _row(self, visitor: str, fact: sessions.Fact) -> dict[str, Any]:
        row: dict[str, Any] = {name: 0.0 for name in sessions.FIELDS}
        row.update(fact.deltas)
        row.update(bucket_ms=fact.bucket_ms, dims=list(fact.values), visitor=visitor, bot=False)
        return row

    def _bot_fact(self, visitor: str, ts_ms: int) -> dict[str, Any]:
        row: dict[str, Any] = {name: 0.0 for name in sessions.FIELDS}
        row.update(
            bucket_ms=buckets.floor(ts_ms, self.config.granularity),
            dims=[],
            visitor=visitor,
            bot=True,
            events=1.0,
        )
        return row
