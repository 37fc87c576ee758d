"""The streaming job's driver with its tasks on the standalone cluster, for the cluster tests.

    python stream_driver.py '<settings as JSON>'

Settings: `conf` (Spark settings: the cluster's, the jars), `spec` (a spec file), `solr_url`,
`data` (the data root), `landing`, `sentinel_ms`, and `stop_file`: a path runs both queries
on a 1 s trigger until that file exists; None runs nothing live (a driver taking over from a
killed one). Then it delivers the sentinel and runs both queries to the end twice with
availableNow (the first run takes whatever is left too), so every visit closes
(`streaming.close_every_visit`), and prints one JSON line: the application id.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: streaming helpers

from pyspark.sql import SparkSession

import streaming
from clickagg.domain import specfile
from clickagg.pipeline import archive, session, stream


def main(settings: dict[str, Any]) -> None:
    builder = SparkSession.builder.appName("clickagg-cluster-stream")
    for key, value in {**session.LOCAL_CONF, **settings["conf"]}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    aggregation = specfile.load(Path(settings["spec"]))
    paths = archive.JobPaths(settings["data"])
    solr_url = settings["solr_url"]
    Path(settings["data"]).mkdir(parents=True, exist_ok=True)
    (Path(settings["data"]) / "app-id").write_text(spark.sparkContext.applicationId)
    try:
        if settings["stop_file"] is not None:
            live(spark, aggregation, paths, solr_url, Path(settings["stop_file"]))
        streaming.close_every_visit(
            spark,
            aggregation,
            paths,
            solr_url,
            streaming.deliver_to(Path(settings["landing"])),
            settings["sentinel_ms"],
        )
        print(json.dumps({"app_id": spark.sparkContext.applicationId}), flush=True)
    finally:
        spark.stop()


def live(spark: Any, aggregation: Any, paths: Any, solr_url: str, stop_file: Path) -> None:
    source = stream.source_of(aggregation)
    queries = [
        stream.ingest(spark, aggregation, paths, source, 1),
        stream.aggregate(spark, aggregation, paths, streaming.store_at(solr_url), 1),
    ]
    try:
        while not stop_file.exists() and all(q.isActive for q in queries):
            time.sleep(0.5)
    finally:
        for query in queries:
            stream.stop_between_batches(query)
    for query in queries:
        if query.exception() is not None:
            raise SystemExit(f"query {query.name} failed: {query.exception()}")


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
