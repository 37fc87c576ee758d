"""`make demo`: the main job on the local embedded default.

For now it starts a real 2-node SolrCloud, validates the reference spec, creates one
collection per level and prints the plan.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from clickagg.adapters import solr as solr_client
from clickagg.adapters import solr_collections, specfile
from clickagg.cli import render
from clickagg.domain import plan
from clickagg.local import solr


def run(console: Console, spec_file: Path, *, keep: bool) -> None:
    aggregation = specfile.load(spec_file)
    console.print(f"[green]{spec_file}: valid[/green]")
    was_running = solr.status() is not None
    step = time.monotonic()
    endpoints = solr.up()
    console.print(f"SolrCloud up in {time.monotonic() - step:.1f}s: {endpoints.base_url}")
    try:
        client = solr_client.SolrClient(endpoints.base_url)
        for ensured in solr_collections.ensure_level_collections(client, aggregation):
            verb = "created" if ensured.created else "already there"
            console.print(f"collection {ensured.collection}: {verb}")
        render.plan_tables(console, aggregation, plan.build(aggregation))
    finally:
        if not (keep or was_running):
            solr.down()
            console.print("SolrCloud stopped (use --keep to leave it running)")
