"""Does a source tree leave the same documents in Solr as another, for the same traffic?

A layout change (issue 13) must not change what the pipeline writes. This script streams
one fixed piece of traffic through the `clickagg` command of a given source tree and dumps
every document of every level collection to JSON, so two trees can be compared field for
field, apart from what records when and by whom a document was written:

1. starts its own 2-node SolrCloud (free ports, its own CLICKAGG_RUN_DIR);
2. runs the tree's `clickagg generate --seed S --start T --fast` into a landing directory;
3. runs the tree's `clickagg stream --available-now` over examples/shop-kpis.yaml (adapted
   as the streaming tests adapt it), then lands one sentinel event hours later and runs it
   twice more, so every visit closes (as tests/streaming.close_every_visit does);
4. reads every document back through `clickagg.store` (this tree's) and writes them, sorted
   by id and without the write-time fields, to `--out`.

`compare A.json B.json` prints the number of documents and every difference.

Run (the tree under test may be an old commit in a worktree; the dump uses this tree):
    PYTHONPATH=src PYSPARK_PYTHON=$VENV/bin/python $VENV/bin/python \
        benchmarks/streamed_documents.py dump --tree /tmp/old --out /tmp/old.json
    ... dump --tree . --out /tmp/new.json
    ... compare /tmp/old.json /tmp/new.json
Event times must lie within the event contract's window (30 days back), so `--start` must
be recent; both dumps must use the same one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the streaming tests' spec and sentinel

import stream_throughput  # noqa: E402

import streaming  # noqa: E402
from clickagg.domain import buckets, cells, progress  # noqa: E402
from clickagg.store import cell_reads  # noqa: E402
from clickagg.store import client as solr  # noqa: E402

#: Who wrote a document and when: they differ from run to run by design.
WRITE_FIELDS = ("updated_at", cells.STREAM_FIELD, "_version_", progress.LAG_FIELD)
DEFAULT_START = "2026-11-28T00:00:00Z"


def dump(tree: Path, out: Path, start: str, hours: int, visitors: int, seed: int) -> None:
    start_ms = buckets.parse_iso(start)
    with tempfile.TemporaryDirectory(prefix="streamed-documents-") as temp:
        work = Path(temp)
        with stream_throughput.solr_cloud(work / "run") as endpoints:
            landing = work / "landing"
            aggregation = streaming.aggregation_for(landing, endpoints.base_url, "same-docs")
            spec = streaming.write_spec(aggregation, work / "spec.yaml")
            clickagg(
                tree,
                "generate",
                "--out",
                str(landing),
                "--seed",
                str(seed),
                "--start",
                start,
                "--duration",
                f"{hours}h",
                "--visitors",
                str(visitors),
                "--fast",
            )
            stream = (
                "stream",
                str(spec),
                "--solr-url",
                endpoints.base_url,
                "--data",
                str(work / "data"),
                "--available-now",
                "--trigger-seconds",
                "1",
            )
            clickagg(tree, *stream)
            sentinel_ms = start_ms + (hours + 3) * streaming.HOUR_MS
            (landing / "zz-sentinel.jsonl").write_bytes(streaming.sentinel(sentinel_ms) + b"\n")
            for _ in range(2):  # move the watermark past every visit, then let timers fire
                clickagg(tree, *stream)
            with solr.SolrClient(endpoints.base_url) as client:
                documents = {
                    level.collection: stored(client, level.collection)
                    for level in aggregation.levels
                }
    out.write_text(json.dumps(documents, indent=1, sort_keys=True))
    counts = ", ".join(f"{name}: {len(docs)}" for name, docs in documents.items())
    print(f"{tree}: {counts} documents -> {out}")


def clickagg(tree: Path, *arguments: str) -> None:
    """Run the tree's own `clickagg` (its source first on the path, Spark workers too)."""
    environment = {**os.environ, "PYTHONPATH": str(tree / "src")}
    environment["PYSPARK_PYTHON"] = environment["PYSPARK_DRIVER_PYTHON"] = sys.executable
    subprocess.run(
        [sys.executable, "-m", "clickagg", *arguments],
        cwd=tree,
        env=environment,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def stored(client: solr.SolrClient, collection: str) -> list[dict[str, Any]]:
    client.commit(collection)
    return [
        {name: value for name, value in document.items() if name not in WRITE_FIELDS}
        for document in cell_reads.documents(client, collection)
    ]


def compare(first: Path, second: Path) -> int:
    """Print the documents compared and every difference; the number of differences."""
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    problems = differences(a, b)
    total = sum(len(docs) for docs in a.values())
    print(f"{total} documents in {len(a)} collections compared: {len(problems)} differences")
    for problem in problems[:50]:
        print(f"  {problem}")
    return len(problems)


def differences(
    a: Mapping[str, Sequence[Mapping[str, Any]]], b: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[str]:
    problems = [f"collection {name} only in one dump" for name in sorted(a.keys() ^ b.keys())]
    for name in sorted(a.keys() & b.keys()):
        left = {d["id"]: d for d in a[name]}
        right = {d["id"]: d for d in b[name]}
        problems += [f"{name}: {i} only in one dump" for i in sorted(left.keys() ^ right.keys())]
        for doc_id in sorted(left.keys() & right.keys()):
            for field in sorted(left[doc_id].keys() | right[doc_id].keys()):
                was, now = left[doc_id].get(field), right[doc_id].get(field)
                if was != now:
                    problems.append(f"{name}: {doc_id} {field}: {was!r} != {now!r}")
    return problems


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    dumping = commands.add_parser("dump", help="stream the traffic through a tree, dump Solr")
    dumping.add_argument("--tree", type=Path, default=ROOT, help="the source tree to run")
    dumping.add_argument("--out", type=Path, required=True, help="where the JSON dump goes")
    dumping.add_argument("--start", default=DEFAULT_START, help="traffic start (ISO 8601)")
    dumping.add_argument("--hours", type=int, default=3, help="hours of traffic")
    dumping.add_argument("--visitors", type=int, default=1500)
    dumping.add_argument("--seed", type=int, default=42)
    comparing = commands.add_parser("compare", help="compare two dumps")
    comparing.add_argument("dumps", type=Path, nargs=2)
    args = parser.parse_args(argv)
    if args.command == "dump":
        dump(args.tree.resolve(), args.out, args.start, args.hours, args.visitors, args.seed)
    else:
        raise SystemExit(1 if compare(*args.dumps) else 0)


if __name__ == "__main__":
    main()
