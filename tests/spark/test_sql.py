"""`clickagg sql`: Spark SQL over the raw archive (written by the ingest query) and the
aggregate levels (cells written by the cell writer into the real SolrCloud)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import service_data
import streaming
from clickagg import errors
from clickagg.domain import model
from clickagg.local import solr as local_solr
from clickagg.pipeline import archive, stream
from clickagg.pipeline import sql as sql_adapter
from clickagg.sim import landing
from clickagg.store import client as solr_adapter

pytestmark = [pytest.mark.spark, pytest.mark.solr]

Q = service_data.QUARTER_MS


@pytest.fixture(scope="module")
def tables(
    spark: Any,
    solr: local_solr.SolrEndpoints,
    solr_client: solr_adapter.SolrClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[model.Aggregation, int]:
    """The archive of an hour of traffic, and four totals cells; the number of lines."""
    work = tmp_path_factory.mktemp("sql")
    aggregation = service_data.aggregation(solr.base_url)
    first = service_data.now_quarter() - 4 * Q
    lines = streaming.traffic_lines(first, hours=1, visitors=40, seed=3)
    landing.write_files(lines, work / "landing", rolling=streaming.ROLLING)
    source = stream.Source("files", {"path": str(work / "landing"), "maxFilesPerTrigger": "10"})
    paths = archive.JobPaths(str(work / "data"))
    stream.ingest(spark, aggregation, paths, source, 1, available_now=True).awaitTermination()
    cells = service_data.Cells(aggregation)
    for i in range(4):
        cells.add((), first + i * Q, (), {"visits": 10 + i}, service_data.visitors(1, 30))
        cells.add(("offer", "device_class"), first + i * Q, ("o1", "mobile"), {"clicks": 2})
    cells.write(solr_client)
    sql_adapter.register(spark, aggregation, paths, solr.base_url)
    return aggregation, len(lines)


def rows(spark: Any, query: str) -> list[tuple[Any, ...]]:
    return sql_adapter.collect(sql_adapter.run(spark, query), 1000)[1]


def test_every_line_is_an_event_or_a_dead_letter(spark: Any, tables: Any) -> None:
    (events,) = rows(spark, "SELECT count(*) FROM events")
    (dead,) = rows(spark, "SELECT count(*) FROM dead_letters")
    assert events[0] + dead[0] == tables[1]
    assert events[0] > 100
    by_type = dict(rows(spark, "SELECT type, count(*) FROM events GROUP BY type"))
    assert by_type["page_view"] > 0


def test_the_levels_are_tables_of_cells(spark: Any, tables: Any) -> None:
    assert rows(spark, "SELECT sum(visits) FROM level_15m WHERE cuboid = 'totals'") == [(46.0,)]
    assert rows(
        spark,
        "SELECT offer, device_class, sum(clicks) FROM level_15m "
        "WHERE cuboid = 'offer+device_class' GROUP BY offer, device_class",
    ) == [("o1", "mobile", 8.0)]
    uniques = rows(spark, "SELECT unique_visitors FROM level_15m WHERE cuboid = 'totals'")
    assert [round(u) for (u,) in uniques] == [30, 30, 30, 30]
    assert rows(spark, "SELECT count(*) FROM level_1h") == [(0,)]


def test_a_failing_query_names_the_problem_without_a_jvm_stack(spark: Any, tables: Any) -> None:
    with pytest.raises(errors.SqlError) as raised:
        sql_adapter.run(spark, "SELECT visits FROM level_5m")
    message = str(raised.value)
    assert "level_5m" in message
    assert "TABLE_OR_VIEW_NOT_FOUND" in message
    assert "at org.apache" not in message
    assert "UnresolvedRelation" not in message  # no query plan either


def test_a_result_writes_as_csv(spark: Any, tables: Any, tmp_path: Path) -> None:
    result = sql_adapter.run(spark, "SELECT bucket, visits FROM level_15m WHERE cuboid = 'totals'")
    sql_adapter.write(result, tmp_path / "out", "csv")
    written = [p.read_text() for p in (tmp_path / "out").glob("part-*.csv")]
    lines = [line for text in written for line in text.splitlines()]
    assert lines.count("bucket,visits") == len(written)
    assert len(lines) - len(written) == 4
