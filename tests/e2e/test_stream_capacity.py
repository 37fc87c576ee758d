"""A stream driven past its capacity is advised more executors, and autoscaled within bounds.

Real parts throughout: the Aggregation (examples/one-level.yaml with `spark.autoscale: true`,
one executor, at most 3) lives on the real API server; an operator pass (`reconcile`, on
the stored object, as kopf runs it) creates its collection in the real SolrCloud and its
children; the job's own two queries (ingest, aggregate) and its own progress reporter run
on the test's SparkSession (local mode: one executor's worth) over a landing directory fed
ever faster (the file size doubles every few seconds) until the job's progress document
in Solr says it falls behind: rows arrive faster than the slower query processes them.
The next pass reads that document, writes the rates and the advice to the status, warns
StreamFallsBehind once, and raises the stream SparkApplication's executors within bounds.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client as k8s_client

import examples
import polling
import streaming
from clickagg.domain import capacity, progress, spec, validation
from clickagg.local import solr as local_solr
from clickagg.local import solr_security
from clickagg.operator import children, kube, reconcile
from clickagg.pipeline import archive, stream
from clickagg.pipeline import progress as progress_reporter
from clickagg.store import client as store_client
from clickagg.store import progress as stored_progress
from fixtures import solr as fixtures_solr

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600), pytest.mark.usefixtures("peer_crds")]

NAME = "capacity"
AGGREGATION_API = (spec.API_GROUP, spec.API_VERSION)
MAX_EXECUTORS = 3
FIRST_FILE_LINES = 2_000
DOUBLE_EVERY_SECONDS = 8.0
#: 8,000 lines/s at most: past what the aggregate query processes on this 2-core box, and
#: batches stay small enough to report progress often (at 32,000 lines/s the JVM parser's
#: ingest fed the aggregate minute-long batches, and two reports came later than 300 s).
MOST_FILE_LINES = 4_000
BEHIND_WITHIN_SECONDS = 300.0


def aggregation_object(namespace: str, prefix: str, solr_url: str) -> dict[str, Any]:
    obj = examples.one_level(namespace, NAME, prefix)
    obj["spec"]["solr"] = {"url": solr_url, "shards": 1, "replicationFactor": 1}
    obj["spec"]["spark"] = {
        "triggerInterval": "1s",
        "autoscale": True,
        "executor": {"instances": 1, "minInstances": 1, "maxInstances": MAX_EXECUTORS},
    }
    return obj


class Feeder(threading.Thread):
    """Lands a file of valid events twice a second, doubling its size every few seconds."""

    def __init__(self, landing: Path) -> None:
        super().__init__(daemon=True)
        self.landing = landing
        self.stopped = threading.Event()

    def run(self) -> None:
        started, index = time.monotonic(), 0
        while not self.stopped.wait(0.5):
            doublings = int((time.monotonic() - started) / DOUBLE_EVERY_SECONDS)
            lines = min(FIRST_FILE_LINES * 2**doublings, MOST_FILE_LINES)
            now_ms = int(time.time() * 1000)
            body = "".join(event_line(index, line, now_ms) for line in range(lines))
            partial = self.landing / f".f{index:05d}.tmp"
            partial.write_text(body)
            partial.rename(self.landing / f"f{index:05d}.jsonl")  # whole files only
            index += 1


def event_line(file_index: int, line: int, now_ms: int) -> str:
    record = {
        "event_id": f"e{file_index}-{line}",
        "ts": now_ms - line % 1000,
        "visitor_id": f"v{line % 5000}",
        "type": "page_view",
        "page": f"p{line % 50}",
        "channel": ("direct", "search", "social")[line % 3],
        "device_class": "desktop",
        "browser_family": "chrome",
    }
    return json.dumps(record) + "\n"


def stored(objects: k8s_client.CustomObjectsApi, namespace: str) -> dict[str, Any]:
    found = objects.get_namespaced_custom_object(*AGGREGATION_API, namespace, spec.PLURAL, NAME)
    return cast(dict[str, Any], found)


def run_pass(body: dict[str, Any], namespace: str) -> reconcile.Outcome:
    """One pass, its status written as kopf writes it (a merge patch of the status), as the
    operator's own Solr user (the module's environment holds the jobs')."""
    with pytest.MonkeyPatch.context() as env:
        for variable, value in fixtures_solr.role_env(solr_security.OPERATOR).items():
            env.setenv(variable, value)
        outcome = reconcile.reconcile(
            body,
            retry=0,
            logger=logging.getLogger("test-operator"),
            config=reconcile.Config.from_env(),
        )
    assert outcome.status is not None, outcome.problem
    assert kube.patch_aggregation_status(namespace, NAME, outcome.status.patch())
    return outcome


def test_a_stream_driven_past_its_capacity_is_advised_and_autoscaled(
    spark: Any,
    api: k8s_client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    solr: local_solr.SolrEndpoints,
    solr_client: store_client.SolrClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    objects = k8s_client.CustomObjectsApi(api)
    prefix = f"cap{uuid.uuid4().hex[:8]}"
    obj = aggregation_object(namespace, prefix, solr.base_url)
    objects.create_namespaced_custom_object(*AGGREGATION_API, namespace, spec.PLURAL, obj)
    try:
        first = run_pass(stored(objects, namespace), namespace)
        assert first.status is not None and first.status.executors == 1

        landing = tmp_path / "landing"
        landing.mkdir()
        obj["spec"]["source"]["files"]["path"] = str(landing)
        aggregation = validation.validate(obj)  # the job's view: the same spec, a local landing
        paths = archive.JobPaths.of(str(tmp_path / "data"), aggregation)
        ingest_lines = progress_reporter.IngestLines()  # as the job wires it
        reporter = progress_reporter.ProgressReporter(
            aggregation,
            streaming.store_at(solr.base_url),
            stream.aggregate_query_name(aggregation),
            1,  # local mode: one executor's worth
            stream.ingest_query_name(aggregation),
            ingest_lines,
        )
        spark.streams.addListener(reporter)
        feeder = Feeder(landing)
        queries = []
        try:
            queries.append(
                stream.ingest(
                    spark,
                    aggregation,
                    paths,
                    stream.source_of(aggregation),
                    1,
                    on_batch=lambda batch_id, report: ingest_lines.record(batch_id, report.lines),
                )
            )
            store = streaming.store_at(solr.base_url)
            queries.append(stream.aggregate(spark, aggregation, paths, store, 1))
            feeder.start()

            seen: list[progress.Report | None] = [None]

            def behind() -> progress.Report | None:
                seen[0] = report = stored_progress.read(solr_client, aggregation.finest)
                rates = report.rates if report else None
                return report if rates is not None and capacity.falls_behind(rates) else None

            try:
                report = polling.eventually(behind, "the job falls behind", BEHIND_WITHIN_SECONDS)
            except BaseException:
                print(f"\nthe last progress report: {seen[0]}")
                raise
        finally:
            spark.streams.removeListener(reporter)  # no report after the one seen
            feeder.stopped.set()
            for query in queries:
                stream.stop_between_batches(query, timeout_seconds=5)
        rates = report.rates
        assert rates is not None
        print(f"\nbehind: {rates}")

        second = run_pass(stored(objects, namespace), namespace)

        advised = capacity.executors_needed(rates)
        assert advised is not None and advised >= 2
        (warning,) = [n for n in second.notices if n.reason == "StreamFallsBehind"]
        assert warning.type == "Warning"
        assert f"{advised} executors would keep up" in warning.message
        status = stored(objects, namespace)["status"]
        assert status["inputRowsPerSecond"] > status["processedRowsPerSecond"] > 0
        assert status["advisedExecutors"] == advised
        target = min(advised, MAX_EXECUTORS)
        assert status["executors"] == target
        (application,) = [
            item
            for item in cast(
                dict[str, Any],
                objects.list_namespaced_custom_object(
                    children.SPARK_APPLICATION.group,
                    children.SPARK_APPLICATION.version,
                    namespace,
                    children.SPARK_APPLICATION.plural,
                ),
            )["items"]
            if item["metadata"]["name"] == children.stream_name(NAME)
        ]
        assert application["spec"]["executor"]["instances"] == target
        normal = [n.reason for n in second.notices if n.type == "Normal"]
        assert normal == ["Autoscaled"], second.notices

        # The same advice again: no second Warning, and the chosen count sticks.
        third = run_pass(stored(objects, namespace), namespace)
        assert [n.reason for n in third.notices] == []
        assert third.status is not None and third.status.executors == target
    finally:
        solr_client.delete_collection(f"{prefix}-15m")
