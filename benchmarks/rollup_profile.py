"""`benchmarks/rollup.py` with the rollup's writes taken apart: where `replace_range`'s time
goes, per combine and coarser level, and a JFR recording of the Solr JVM during the
pushdown's 1h rollup.

Wraps (never replaces) the store's calls and adds, per phase: `replace_range`'s wall time,
of it sending the documents (the shards in parallel), reading the routes, commits, the
count of stale cells, delete-by-query; the progress writes; and Solr's own QTime per
update kind (add, commit, delete-by-query) from each response. What `replace_range`
spends beyond its calls is building and encoding the documents in the driver's Python.
The JFR recordings land in `--jfr-dir` (`jfr view hot-methods FILE` reads them).

Run: PYTHONPATH=src:tests PYSPARK_PYTHON=$VENV/bin/python $VENV/bin/python
     benchmarks/rollup_profile.py [--jfr-dir DIR] [benchmarks/rollup.py's options]
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rollup as bench

from clickagg.domain import model
from clickagg.pipeline import rollup as spark_rollup
from clickagg.store import cell_reads, cell_writes, protocol, routing, solr_cells
from clickagg.store import client as solr

SOLR_MAIN = "io.clickagg.local.SolrCloudLauncher"
seconds: dict[str, float] = defaultdict(float)
calls: dict[str, int] = defaultdict(int)
_lock = threading.Lock()
_phase = ["fill"]


def _add(label: str, spent: float) -> None:
    with _lock:
        seconds[f"{_phase[0]} | {label}"] += spent
        calls[f"{_phase[0]} | {label}"] += 1


def _timed(owner: Any, name: str, label: str) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return original(*args, **kwargs)
        finally:
            _add(label, time.monotonic() - started)

    setattr(owner, name, timed)


def _with_qtime(original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    def call(self: solr.SolrClient, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body = original(self, method, path, **kwargs)
        if path.endswith("/update"):
            params, data = kwargs.get("params") or {}, kwargs.get("data") or b""
            kind = "commit" if params.get("commit") else "add"
            kind = "delete-by-query" if data.startswith(b'{"delete"') else kind
            _add(f"Solr QTime {kind}", body.get("responseHeader", {}).get("QTime", 0) / 1000)
        return body

    return call


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            children[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children[pid])
    return found


def _solr_jvms() -> list[int]:
    """The Solr launcher JVMs this process started (never another engineer's)."""
    found = []
    for pid in _descendants(os.getpid()):
        try:
            if SOLR_MAIN in Path(f"/proc/{pid}/cmdline").read_text():
                found.append(pid)
        except OSError:
            continue
    return found


def _jcmd(pid: int, *command: str) -> None:
    subprocess.run(["jcmd", str(pid), *command], capture_output=True, check=False)


def _roll_up_in_phases(jfr_dir: Path) -> None:
    original = spark_rollup.roll_up

    def roll_up(
        aggregation: model.Aggregation,
        index: int,
        store: protocol.CellStore,
        combine: spark_rollup.Combine,
        input_end_ms: int | None,
    ) -> spark_rollup.LevelRun:
        name = type(getattr(combine, "inner", combine)).__name__
        level = aggregation.levels[index].name
        _phase[0] = f"{name} {level}"
        jvms = _solr_jvms() if (name, level) == ("PushdownCombine", "1h") else []
        for pid in jvms:
            _jcmd(pid, "JFR.start", "name=rollup", "settings=profile")
        try:
            return original(aggregation, index, store, combine, input_end_ms)
        finally:
            _phase[0] = "other"
            for pid in jvms:
                _jcmd(pid, "JFR.stop", "name=rollup", f"filename={jfr_dir / f'solr-{pid}.jfr'}")

    spark_rollup.roll_up = roll_up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, add_help=False)
    parser.add_argument("--jfr-dir", type=Path, default=Path())
    known, rest = parser.parse_known_args()
    _timed(cell_writes, "replace_range", "replace_range")
    _timed(routing.Routes, "send", "of it sending (wall, shards in parallel)")
    _timed(routing, "routes", "of it reading the routes")
    _timed(solr.SolrClient, "commit", "commit")
    _timed(solr.SolrClient, "delete_by_query", "delete-by-query")
    _timed(cell_reads, "count", "count (of it the stale check)")
    _timed(solr_cells.SolrCellStore, "report_level_progress", "progress")
    solr.SolrClient._json_call = _with_qtime(solr.SolrClient._json_call)  # type: ignore[method-assign]
    _roll_up_in_phases(known.jfr_dir)
    sys.argv = [sys.argv[0], *rest]
    try:
        bench.main()
    finally:
        print("- where the writes' time went (seconds / calls):")
        for label in sorted(seconds):
            print(f"  - {label}: {seconds[label]:.2f} s / {calls[label]}")


if __name__ == "__main__":
    main()
