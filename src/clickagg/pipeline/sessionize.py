"""The sessionizer as Spark runs it, for the stream and for replay alike.

`streaming_facts` and `history_facts` are where the path is chosen (the Spark setting
`spark.clickagg.sessionizer`): the JVM operator of pipeline/jvm_sessionizer.py by default,
or the Python one below, one call per visitor and micro-batch with the state as JSON.

`applyInPandasWithState` hands the state over with the rows (no round trip per access),
which is why it is used rather than the newer transformWithState API.

Spark's per-group work (Arrow to pandas, one frame per group, and back) costs more than the
sessionizer itself, and it grows with the columns. So each event crosses as one JSON string
(`packed_events`), and each visitor's facts come back as one JSON string (`unpacked_facts`
turns them into rows in the JVM): two narrow columns each way instead of twenty-five and five.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.streaming.state import GroupStateTimeout

from clickagg.domain import buckets, sessions
from clickagg.pipeline import jvm_sessionizer

STATE_SCHEMA = "visitor_state string"
PACKED = "event"  # one event's fields the sessionizer reads, as a JSON object
OUTPUT_COLUMNS = ("visitor", "facts")
OUTPUT_SCHEMA = "visitor string, facts string"
# A fact: b bucket start (ms), d dimension values, x bot, a deltas in sessions.FIELDS order.
_FACTS_SCHEMA = "array<struct<b:bigint,d:array<string>,x:boolean,a:array<double>>>"
_BOT_AMOUNTS = [1.0 if name == "events" else 0.0 for name in sessions.FIELDS]
_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def streaming_facts(events: DataFrame, config: sessions.Config) -> DataFrame:
    """Streaming: the facts (bucket_ms, dims, visitor, bot, amounts) of deduplicated events
    that carry the watermark's column `event_time`, on the chosen path."""
    if jvm_sessionizer.chosen(events.sparkSession) == jvm_sessionizer.JVM:
        return jvm_sessionizer.facts(events, config)
    output = (
        packed_events(events, config, keep=("event_time",))
        .groupBy("visitor_id")
        .applyInPandasWithState(
            Sessionizer(config),
            OUTPUT_SCHEMA,
            STATE_SCHEMA,
            "append",
            GroupStateTimeout.EventTimeTimeout,
        )
    )
    return unpacked_facts(output)


def history_facts(events: DataFrame, config: sessions.Config, watermark_ms: int) -> DataFrame:
    """Batch (replay): each visitor's whole history in one call, closing the visits the
    watermark `watermark_ms` closes; the same facts as `streaming_facts`, on the chosen path."""
    if jvm_sessionizer.chosen(events.sparkSession) == jvm_sessionizer.JVM:
        return jvm_sessionizer.facts_once(events, config, watermark_ms)
    whole_history = WholeHistory(config, watermark_ms)

    def sessionize_visitor(key: tuple[Any, ...], frame: pd.DataFrame) -> pd.DataFrame:
        # applyInPandas inspects the argument count, so it gets a plain function.
        return whole_history(key, frame)

    output = (
        packed_events(events, config)
        .groupBy("visitor_id")
        .applyInPandas(sessionize_visitor, OUTPUT_SCHEMA)
    )
    return unpacked_facts(output)


def packed_events(
    events: DataFrame, config: sessions.Config, keep: tuple[str, ...] = ()
) -> DataFrame:
    """`visitor_id` and the event's fields the sessionizer reads, packed into one column;
    `keep` names columns to pass as they are (the event-time timeout needs the watermark's)."""
    fields = [name for name in Sessionizer(config).fields if name in events.columns]
    packed = F.to_json(F.struct(*fields)).alias(PACKED)
    return events.select("visitor_id", packed, *keep)


def unpacked_facts(output: DataFrame) -> DataFrame:
    """The sessionizer's output as fact rows: bucket_ms, dims, visitor, bot, amounts."""
    fact = F.explode(F.from_json("facts", _FACTS_SCHEMA)).alias("fact")
    return output.select("visitor", fact).select(
        F.col("fact.b").alias("bucket_ms"),
        F.col("fact.d").alias("dims"),
        "visitor",
        F.col("fact.x").alias("bot"),
        F.col("fact.a").alias("amounts"),
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
        bot_buckets: list[int] = []
        for frame in frames:
            self._read(frame[PACKED].tolist(), arrived, bot_buckets)
        current = sessions.load_state(state.get[0]) if state.exists else sessions.VisitorState()
        watermark = int(state.getCurrentWatermarkMs())
        facts, next_close = sessions.advance(current, arrived, watermark, self.config)
        if next_close is None:
            state.remove()
        else:
            state.update((sessions.dump_state(current),))
            state.setTimeoutTimestamp(max(next_close, watermark + 1))
        if facts or bot_buckets:
            yield pd.DataFrame({"visitor": [visitor], "facts": [self._facts(facts, bot_buckets)]})

    def _read(
        self, packed: list[str], arrived: list[sessions.Counted], bot_buckets: list[int]
    ) -> None:
        granularity = self.config.granularity
        for text in packed:
            event = json.loads(text)
            ts_ms = int(event["ts_ms"])
            if event.get("bot"):
                bot_buckets.append(buckets.floor(ts_ms, granularity))
                continue
            revenue = event.get("revenue")
            arrived.append(
                sessions.Counted(
                    ts_ms=ts_ms,
                    event_id=str(event["event_id"]),
                    type=str(event["type"]),
                    revenue=0.0 if revenue is None or revenue != revenue else float(revenue),
                    values=sessions.values_of(event, self.config),
                )
            )

    @functools.cached_property
    def fields(self) -> tuple[str, ...]:
        """The event fields read: what every event has, then the dimensions' sources."""
        dimension_fields = tuple(
            d.field for d in self.config.dimensions if d.field != sessions.VISITOR_TYPE
        )
        return ("bot", "ts_ms", "revenue", "event_id", "type", *dimension_fields)

    @staticmethod
    def _facts(facts: list[sessions.Fact], bot_buckets: list[int]) -> str:
        rows = [
            {
                "b": f.bucket_ms,
                "d": list(f.values),
                "x": False,
                "a": [float(f.deltas.get(n, 0.0)) for n in sessions.FIELDS],
            }
            for f in facts
        ]
        rows += [{"b": b, "d": [], "x": True, "a": _BOT_AMOUNTS} for b in bot_buckets]
        return _encode(rows)


@dataclass(frozen=True)
class WholeHistory:
    """applyInPandas: one visitor's archived events, sessionized in one go."""

    config: sessions.Config
    watermark_ms: int

    def __call__(self, key: tuple[Any, ...], frame: pd.DataFrame) -> pd.DataFrame:
        state = _FixedWatermark(self.watermark_ms)
        produced = list(Sessionizer(self.config)(key, iter([frame]), state))
        if not produced:
            return pd.DataFrame(columns=list(OUTPUT_COLUMNS))
        return pd.concat(produced, ignore_index=True)


class _FixedWatermark:
    """The GroupState surface the sessionizer uses, for a batch run: no stored state."""

    exists = False

    def __init__(self, watermark_ms: int) -> None:
        self.watermark_ms = watermark_ms

    def getCurrentWatermarkMs(self) -> int:  # noqa: N802 (Spark's GroupState name)
        return self.watermark_ms

    def remove(self) -> None:
        pass

    def update(self, _: tuple[str]) -> None:
        pass

    def setTimeoutTimestamp(self, _: int) -> None:  # noqa: N802 (Spark's GroupState name)
        pass
