"""The whole path against a SolrCloud with BasicAuth and TLS both on, each part as its own user.

The e2e tier's 2-node cluster serving https only with rule-based authorization
(fixtures.solr.secure_solr). The operator's user creates the collections (the jobs' may not);
the streaming job and the rollup write as the jobs' user; the KPI service (`clickagg serve`)
and `clickagg sql`, whose level tables are read from Solr in the executors' Python workers,
read as the query user. Each finds its user, password file and CA bundle in its environment
only. Every cell equals the DuckDB oracle's; the query user cannot write; a service with a
wrong password answers 503 naming the user, not the password; no password appears in any
log line or output."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import requests

import streaming
from clickagg import errors
from clickagg.domain import buckets, model, sessions, sketches
from clickagg.jobs import rollup as rollup_job
from clickagg.local import process, solr_security
from clickagg.local import solr as local_solr
from clickagg.pipeline import archive
from clickagg.sim import landing
from clickagg.store import batch, cell_reads, credentials, solr_cells
from clickagg.store import collections as solr_collections
from fixtures import solr as fixtures_solr
from polling import eventually

pytestmark = pytest.mark.e2e

INSTANCE = fixtures_solr.SECURE_INSTANCE
# The reference spec allows a day of lateness, so a bucket settles (and rolls up) once the
# watermark is a day past it: the traffic is a day and more old, the sentinel recent.
START_MS = (int(time.time() * 1000) // streaming.HOUR_MS - 30) * streaming.HOUR_MS
HOURS = 2
SENTINEL_MS = START_MS + 27 * streaming.HOUR_MS
LEVELS = [{"granularity": "15m", "retention": "5d"}, {"granularity": "1h", "retention": "6d"}]


def passwords() -> list[str]:
    return [local_solr.credentials(role, INSTANCE)[1] for role in solr_security.ROLES]


class _Kept(logging.Handler):
    """Every record of every logger, formatted with its arguments, while attached."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def secured(
    spark: Any, secure_solr: local_solr.SolrEndpoints, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    assert secure_solr.auth and secure_solr.tls and secure_solr.base_url.startswith("https://")
    work = tmp_path_factory.mktemp("secured-run")
    aggregation = streaming.aggregation_for(
        work / "landing", secure_solr.base_url, "secured-run", levels=LEVELS
    )
    lines = streaming.traffic_lines(START_MS, hours=HOURS, visitors=300, seed=23)
    landing.write_files(lines, work / "landing", rolling=streaming.ROLLING)

    # The jobs' user may not create collections: the operator's does.
    with (
        fixtures_solr.client_as(secure_solr.base_url, solr_security.JOBS) as jobs,
        pytest.raises(errors.SolrAuthError) as refused,
    ):
        jobs.create_collection(aggregation.finest.collection, solr_collections.CONFIGSET_NAME, 2, 1)
    with fixtures_solr.client_as(secure_solr.base_url, solr_security.OPERATOR) as operator:
        solr_collections.ensure_level_collections(operator, aggregation)

    paths = archive.JobPaths(str(work / "data"))
    kept = _Kept()
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(kept)
    root.setLevel(logging.DEBUG)
    try:
        with pytest.MonkeyPatch.context() as env:
            # The jobs' credentials and the CA in the environment only: every Solr client the
            # stream, its progress report and the rollup open finds them there.
            for name in fixtures_solr.SOLR_ENV:
                env.delenv(name, raising=False)
            for name, value in fixtures_solr.role_env(solr_security.JOBS).items():
                env.setenv(name, value)
            streaming.run_to_end(spark, aggregation, paths, secure_solr.base_url)
            streaming.close_every_visit(
                spark,
                aggregation,
                paths,
                secure_solr.base_url,
                streaming.deliver_to(work / "landing"),
                SENTINEL_MS,
            )
            streaming.report_watermark(secure_solr.base_url, aggregation, SENTINEL_MS)
            with solr_cells.SolrCellStore(secure_solr.base_url) as store:
                assert store.client.user == "clickagg-jobs"
                rolled = rollup_job.roll_up_levels(
                    spark, aggregation, store, now_ms=START_MS, data_root=paths.root
                )
    finally:
        root.removeHandler(kept)
        root.setLevel(previous_level)
    raw = [item.line for item in lines]
    return {
        "aggregation": aggregation,
        "lines": raw,
        "refused": refused.value,
        "before_ms": SENTINEL_MS - streaming.HOUR_MS,
        "rolled": rolled,
        "logs": kept.lines,
        "work": work,
    }


def test_the_jobs_user_may_not_create_collections(secured: dict[str, Any]) -> None:
    error = secured["refused"]
    assert (error.status, error.user, error.permission) == (
        403,
        "clickagg-jobs",
        "collection-admin-edit",
    )


def test_a_job_waits_for_the_collections_its_user_may_not_create(
    secure_solr: local_solr.SolrEndpoints, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    aggregation = streaming.aggregation_for(
        tmp_path, secure_solr.base_url, "secured-wait", levels=LEVELS[:1]
    )
    outcome: dict[str, Any] = {}

    def job() -> None:
        with fixtures_solr.client_as(secure_solr.base_url, solr_security.JOBS) as jobs:
            outcome["ensured"] = solr_collections.await_level_collections(
                jobs, aggregation, 120, poll_s=0.2
            )

    waiting = threading.Thread(target=job, daemon=True)
    with caplog.at_level(logging.WARNING, logger="clickagg.store.collections"):
        waiting.start()
        eventually(lambda: "waiting up to 120s" in caplog.text, "the job waiting")
    with fixtures_solr.client_as(secure_solr.base_url, solr_security.OPERATOR) as operator:
        try:
            solr_collections.ensure_level_collections(operator, aggregation)
            waiting.join(60)
            assert outcome["ensured"] == [
                solr_collections.Ensured(aggregation.finest.collection, created=False)
            ]
            assert "clickagg-jobs" in caplog.text  # the refused user, named
            # Nobody creates the next one: the refusal comes back, naming what is missing.
            other = streaming.aggregation_for(
                tmp_path, secure_solr.base_url, "secured-none", levels=LEVELS[:1]
            )
            with (
                fixtures_solr.client_as(secure_solr.base_url, solr_security.JOBS) as jobs,
                pytest.raises(errors.SolrAuthError, match="did not appear within 1s") as refused,
            ):
                solr_collections.await_level_collections(jobs, other, 1, poll_s=0.2)
            assert refused.value.status == 403
            assert other.finest.collection in str(refused.value)
        finally:
            solr_collections.delete_level_collections(operator, aggregation)


def test_the_stream_writes_as_the_jobs_user_over_https_and_every_cell_equals_the_oracle(
    secured: dict[str, Any], secure_solr: local_solr.SolrEndpoints
) -> None:
    aggregation = secured["aggregation"]
    expected = streaming.oracle_result(aggregation, secured["lines"], 900)
    # These readers commit first (an update): the jobs' user reads what it wrote.
    with fixtures_solr.client_as(secure_solr.base_url, solr_security.JOBS) as jobs:
        actual = streaming.solr_cells(jobs, aggregation, secured["before_ms"])
        bots = streaming.bot_events(jobs, aggregation)
    problems = streaming.differences(expected.cells, actual, sessions.FIELDS, sketch_tolerance=0.05)
    assert not problems, f"{len(problems)} differences, first: " + "\n".join(problems[:15])
    assert len(actual) > 500
    assert bots == expected.bot_events


def test_the_rollup_writes_1h_documents_equal_to_the_oracle_as_the_jobs_user(
    secured: dict[str, Any], secure_solr: local_solr.SolrEndpoints
) -> None:
    aggregation: model.Aggregation = secured["aggregation"]
    hour = aggregation.levels[1]
    expected = streaming.oracle_result(aggregation, secured["lines"], 3600)
    with fixtures_solr.client_as(secure_solr.base_url, solr_security.JOBS) as jobs:
        last = batch.read_progress(jobs, hour).last_bucket_ms
        assert last is not None, "1h has rolled up nothing"
        end = buckets.end(last, hour.granularity)
        assert end >= START_MS + HOURS * streaming.HOUR_MS
        got = {
            (c.cuboid, c.bucket_ms, c.values): {
                **c.state,
                "unique_visitors": sketches.estimate(c.sketch),
            }
            for c in cell_reads.stored_cells(jobs, aggregation, hour)
            if c.bucket_ms < end
        }
    want = {k: v for k, v in expected.cells.items() if k[1] < end}
    assert len(got) > 100
    problems = streaming.differences(want, got, sessions.FIELDS, sketch_tolerance=0.05)
    assert not problems, f"{len(problems)} differences, first: " + "\n".join(problems[:15])


def test_the_query_user_reads_but_may_not_write(
    secured: dict[str, Any], secure_solr: local_solr.SolrEndpoints
) -> None:
    collection = secured["aggregation"].finest.collection
    with fixtures_solr.client_as(secure_solr.base_url, solr_security.QUERY) as query:
        assert query.query(collection, {"q": "*:*", "rows": 0})["response"]["numFound"] > 0
        with pytest.raises(errors.SolrAuthError) as refused:
            query.add(collection, [{"id": "written-by-the-query-user"}])
    error = refused.value
    assert (error.status, error.user, error.permission) == (403, "clickagg-query", "update")
    assert "lacks the permission 'update'" in str(error)


def test_no_password_appears_in_the_jobs_logs(secured: dict[str, Any]) -> None:
    logs = "\n".join(secured["logs"])
    for password in passwords():
        assert password not in logs


def serve(spec: Path, environ: Mapping[str, str]) -> tuple[subprocess.Popen[str], str]:
    """`clickagg serve` of `spec` on a free loopback port, with `environ`'s Solr settings."""
    port = process.free_port()
    inherited = {k: v for k, v in os.environ.items() if k not in fixtures_solr.SOLR_ENV}
    service = subprocess.Popen(
        [sys.executable, "-m", "clickagg", "serve", str(spec), "--port", str(port)],
        env={**inherited, **environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def listening() -> bool:
        assert service.poll() is None, "clickagg serve exited"
        try:
            requests.get(f"{url}/healthz", timeout=5)
        except requests.ConnectionError:
            return False
        return True

    eventually(listening, "clickagg serve listens", timeout=120)
    return service, url


def stopped(service: subprocess.Popen[str]) -> str:
    """Stop the service; its whole output."""
    service.terminate()
    output, _ = service.communicate(timeout=60)
    return output


@pytest.fixture(scope="module")
def spec_file(secured: dict[str, Any]) -> Path:
    return streaming.write_spec(secured["aggregation"], secured["work"] / "secured.yaml")


def test_the_service_reads_as_the_query_user_over_https_and_answers_the_oracle(
    secured: dict[str, Any], spec_file: Path
) -> None:
    aggregation = secured["aggregation"]
    expected = streaming.oracle_result(aggregation, secured["lines"], 900)
    end = START_MS + HOURS * streaming.HOUR_MS
    service, url = serve(spec_file, fixtures_solr.role_env(solr_security.QUERY))
    try:
        health = requests.get(f"{url}/healthz", timeout=30)
        assert (health.status_code, health.json()) == (200, {"solr": "ok"})
        response = requests.get(
            f"{url}/api/{aggregation.name}/series",
            params={
                "kpi": ["visits", "page_views", "orders", "revenue"],
                "from": buckets.iso(START_MS),
                "to": buckets.iso(end),
                "level": "15m",
            },
            timeout=60,
        )
        assert response.status_code == 200, response.text
        answer = response.json()
    finally:
        output = stopped(service)
    points = answer["points"]
    assert [p["bucket"] for p in points] == [buckets.iso(b) for b in range(START_MS, end, 900_000)]
    totals = {b: v for (c, b, _), v in expected.cells.items() if c == "totals"}
    assert totals, "the oracle has no totals"
    for point in points:
        want = totals.get(buckets.parse_iso(point["bucket"]), {})
        for kpi in ("visits", "page_views", "orders", "revenue"):
            assert point["kpis"][kpi] == pytest.approx(want.get(kpi, 0)), (point["bucket"], kpi)
    assert sum(p["kpis"]["visits"] for p in points) > 0
    for password in passwords():
        assert password not in output


def test_a_service_with_a_wrong_password_answers_503_naming_the_user_not_the_password(
    secured: dict[str, Any], spec_file: Path
) -> None:
    aggregation = secured["aggregation"]
    wrong = "not-the-query-password"
    environ = {
        credentials.USERNAME_ENV: "clickagg-query",
        credentials.PASSWORD_ENV: wrong,
        **local_solr.tls_env(INSTANCE),
    }
    service, url = serve(spec_file, environ)
    try:
        response = requests.get(
            f"{url}/api/{aggregation.name}/series",
            params={"kpi": "visits", "from": "now-1h", "to": "now"},
            timeout=60,
        )
        health = requests.get(f"{url}/healthz", timeout=30)
    finally:
        output = stopped(service)
    assert response.status_code == 503, response.text
    assert "Retry-After" in response.headers
    detail = response.json()["detail"]
    assert "clickagg-query" in detail
    assert health.status_code == 503
    for secret in (wrong, *passwords()):
        assert secret not in detail
        assert secret not in output


def test_clickagg_sql_reads_a_level_on_its_executors_as_the_query_user(
    secured: dict[str, Any], spec_file: Path, secure_solr: local_solr.SolrEndpoints
) -> None:
    """The levels' data source reads Solr in the executors' Python workers: they must find
    the query user's credentials and the CA in the environment too."""
    aggregation = secured["aggregation"]
    expected = streaming.oracle_result(aggregation, secured["lines"], 900)
    before = secured["before_ms"]
    out = secured["work"] / "sql-out"
    sums = "SELECT cuboid, sum(visits) AS visits, sum(page_views) AS page_views"
    query = f"{sums} FROM level_15m WHERE bucket < timestamp_millis({before}) GROUP BY cuboid"
    inherited = {k: v for k, v in os.environ.items() if k not in fixtures_solr.SOLR_ENV}
    command = [sys.executable, "-m", "clickagg", "sql", str(spec_file), query]
    command += ["--solr-url", secure_solr.base_url, "--data", str(secured["work"] / "data")]
    command += ["--out", str(out), "--format", "csv"]
    done = subprocess.run(
        command,
        env={**inherited, **fixtures_solr.role_env(solr_security.QUERY)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    rows = [
        line.split(",")
        for part in sorted(out.glob("*.csv"))
        for line in part.read_text().splitlines()
        if line and not line.startswith("cuboid,")
    ]
    got = {cuboid: (float(visits), float(views)) for cuboid, visits, views in rows}
    want: dict[str, tuple[float, float]] = {}
    for (cuboid, bucket, _), state in expected.cells.items():
        if bucket < before:
            visits, views = want.get(cuboid, (0.0, 0.0))
            want[cuboid] = (visits + state.get("visits", 0), views + state.get("page_views", 0))
    assert got["totals"][0] > 0
    assert got == want  # sums of whole counts: exact
    for password in passwords():
        assert password not in output
