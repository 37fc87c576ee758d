"""Deduplication by `event_id`: the first copy to arrive is kept (`archive.ARRIVAL_ORDER`).

Spark's `dropDuplicates` keeps an arbitrary copy among those it sees together, so the
stream and the batch jobs first reduce what they read to the first arrival of each event
id. The stream cannot use a window function; it sends each event id's copies of a
micro-batch to one task (the shuffle its dedup state needs anyway) and keeps the first
there, in the JVM on the JVM sessionizer's path. Across micro-batches the stream's
`dropDuplicatesWithinWatermark` keeps the copy of the earlier batch, which arrived first.
Replay and settle rank all copies in the JVM.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from clickagg.pipeline import archive, jvm_sessionizer

RANK = "_arrival_rank"
_FIRST_ARRIVALS = "io.clickagg.sessionizer.FirstArrivals"


def first_arrivals(events: DataFrame, *, streaming: bool) -> DataFrame:
    """`events` (archive rows) with only the first arrival of each event id. The stream's
    runs in the JVM (`FirstArrivals`, in the sessionizer's jar) on the JVM sessionizer's
    path, and in a Python worker (`first_copies`) on the Python one, which needs no jar."""
    if streaming:
        if jvm_sessionizer.chosen(events.sparkSession) == jvm_sessionizer.JVM:
            return jvm_first_arrivals(events)
        schema = events.schema
        return events.repartition("event_id").mapInArrow(first_copies, schema)
    return ranked(events).where(is_first()).drop(RANK)


def ranked(events: DataFrame) -> DataFrame:
    """`events` with each copy's arrival rank among its event id's copies (column `RANK`)."""
    order = Window.partitionBy("event_id").orderBy(*archive.ARRIVAL_ORDER)
    return events.withColumn(RANK, F.row_number().over(order))


def is_first() -> Column:
    """The condition on `ranked` rows that keeps each event id's first arrival."""
    return F.col(RANK) == 1


def jvm_first_arrivals(events: DataFrame) -> DataFrame:
    """The stream's first arrivals by the JVM's `FirstArrivals`: `first_copies`' rule."""
    spark = events.sparkSession
    keep = jvm_sessionizer.jvm_class(
        spark,
        _FIRST_ARRIVALS,
        f"the JVM first-arrival step ({_FIRST_ARRIVALS})",
        jvm_sessionizer.CONF,
        jvm_sessionizer.PYTHON,
    )
    gateway: Any = spark.sparkContext._gateway  # py4j's gateway is untyped
    order = gateway.new_array(gateway.jvm.java.lang.String, len(archive.ARRIVAL_ORDER))
    for i, name in enumerate(archive.ARRIVAL_ORDER):
        order[i] = name
    return DataFrame(keep.of(events._jdf, "event_id", order), spark)


def first_copies(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow: the first arrival of each event id among the rows of one task, which
    holds every copy of its event ids in this micro-batch."""
    collected = list(batches)
    if not collected:
        return
    table = pa.Table.from_batches(collected)
    order = pc.sort_indices(
        table,
        sort_keys=[("event_id", "ascending"), *((c, "ascending") for c in archive.ARRIVAL_ORDER)],
    )
    ordered = table.take(order)
    ids = ordered.column("event_id").combine_chunks()
    if len(ids) == 0:
        return
    keep = pa.concat_arrays([pa.array([True]), pc.not_equal(ids[1:], ids[:-1])])
    yield from ordered.filter(keep).to_batches()
