"""The sessionizer in the JVM, called from the Python job through the Dataset API.

The Java operator (src/clickagg/pipeline/sessionizer_jvm, `flatMapGroupsWithState`) ports
`domain/sessions.py`, which stays the specification: a differential test requires identical
deltas. Python builds the operator's configuration from the spec and the domain's constants,
so rules live in one place; the JVM only runs them without a Python call per visitor.

`spark.clickagg.sessionizer` chooses the path (pipeline/sessionize.py switches on it): `jvm`
(the default) or `python` (the per-visitor `applyInPandasWithState` there). The JVM path needs the
jar on the classpath (`spark.jars`): `clickagg local install` builds it into the cache, and
the jobs image carries it.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from clickagg import errors
from clickagg.domain import dimensions, events, sessions

CONF = "spark.clickagg.sessionizer"
JVM = "jvm"
PYTHON = "python"
_CLASS = "io.clickagg.sessionizer.Sessionizer"
#: The operator reads its input by position: these columns, then one per dimension.
INPUT_COLUMNS = ("visitor_id", "ts_ms", "event_id", "type", "revenue", "bot")


def chosen(spark: SparkSession) -> str:
    """Which sessionizer the job runs, from the Spark setting `spark.clickagg.sessionizer`."""
    value = str(spark.conf.get(CONF, JVM)).strip().lower()
    if value not in (JVM, PYTHON):
        raise errors.JobSetupError(f"{CONF} is {value!r}: expected {JVM!r} or {PYTHON!r}")
    return value


def facts(events_frame: DataFrame, config: sessions.Config) -> DataFrame:
    """Streaming: the sessionizer's facts (bucket_ms, dims, visitor, bot, amounts) of
    events that carry the watermark's column `event_time`."""
    rows = input_rows(events_frame, config, keep=("event_time",))
    return _wrap(_operator(rows.sparkSession).sessionize(rows._jdf, config_text(config)), rows)


def facts_once(events_frame: DataFrame, config: sessions.Config, watermark_ms: int) -> DataFrame:
    """Replay: each visitor's whole history in one call, closing visits at `watermark_ms`."""
    rows = input_rows(events_frame, config)
    operator = _operator(rows.sparkSession)
    return _wrap(operator.sessionizeOnce(rows._jdf, config_text(config), watermark_ms), rows)


def input_rows(
    events_frame: DataFrame, config: sessions.Config, keep: tuple[str, ...] = ()
) -> DataFrame:
    """The columns the operator reads, in its order; an absent source field is null."""
    present = set(events_frame.columns)

    def column(name: str, kind: str) -> Column:
        source = F.col(name) if name in present else F.lit(None)
        return source.cast(kind).alias(name)

    kinds = ("string", "bigint", "string", "string", "double", "boolean")
    base = [column(name, kind) for name, kind in zip(INPUT_COLUMNS, kinds, strict=True)]
    sources = [
        F.lit(None).cast("string").alias(f"dimension_{i}")
        if d.field == sessions.VISITOR_TYPE
        else column(d.field, "string").alias(f"dimension_{i}")
        for i, d in enumerate(config.dimensions)
    ]
    return events_frame.select(*base, *sources, *keep)


def config_text(config: sessions.Config) -> str:
    """The operator's configuration: tab-separated lines, read by SessionConfig.parse."""
    granularity = config.granularity
    lines: list[tuple[object, ...]] = [
        ("granularity_seconds", 0 if granularity.is_calendar else granularity.seconds),
        ("granularity_months", granularity.months if granularity.is_calendar else 0),
        ("timeout_ms", config.timeout_ms),
        ("visitor_memory_ms", sessions.VISITOR_MEMORY_MS),
        ("engaged_ms", sessions.ENGAGED_MS),
        ("fields", *sessions.FIELDS),
        ("visitor_type_field", sessions.VISITOR_TYPE),
        ("page_view", events.PAGE_VIEW),
        ("order", events.ORDER),
        ("add_to_cart", events.ADD_TO_CART),
        ("new_visitor", dimensions.NEW_VISITOR),
        ("returning_visitor", dimensions.RETURNING_VISITOR),
        ("missing", dimensions.MISSING),
        *(("dimension", d.field, d.scope) for d in config.dimensions),
        *(("counter", kind, field) for kind, field in sessions.TYPE_COUNTERS.items()),
    ]
    return "\n".join("\t".join(str(part) for part in line) for line in lines)


def _operator(spark: SparkSession) -> Any:
    return jvm_class(spark, _CLASS, f"the JVM sessionizer ({_CLASS})", CONF, PYTHON)


def jvm_class(spark: SparkSession, name: str, what: str, setting: str, fallback: str) -> Any:
    """The class `name` of the sessionizer's jar, through py4j; a missing jar fails naming
    the Spark `setting` that takes the Python path (`fallback`) instead."""
    found = spark._jvm
    for part in name.split("."):
        found = getattr(found, part)
    if type(found).__name__ != "JavaClass":  # py4j answers a JavaPackage for a missing class
        raise errors.JobSetupError(
            f"{what} is not on the classpath: add the sessionizer jar to spark.jars "
            f"(`clickagg local install` builds it), or set {setting}={fallback}"
        )
    return found


def _wrap(jdf: Any, like: DataFrame) -> DataFrame:
    return DataFrame(jdf, like.sparkSession)
