"""What every job's command line shares: the spec (a file or the operator's JSON), Solr,
the data root, the Spark master, and the log format."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from clickagg.domain import model, specfile, validation

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """A parser with the arguments every job takes."""
    found = argparse.ArgumentParser(prog=prog, description=description)
    spec = found.add_mutually_exclusive_group(required=True)
    spec.add_argument("--spec", type=Path, help="Aggregation YAML file")
    spec.add_argument("--spec-json", help="Aggregation object as JSON (from the operator)")
    found.add_argument("--solr-url", required=True, help="base URL of a Solr node")
    found.add_argument("--data-root", required=True, help="archive and checkpoint root URI")
    found.add_argument("--master", help="a local master (local[N]) when not run by spark-submit")
    found.add_argument(
        "--jars", default="", help="comma-separated extra jars for a --master session"
    )
    return found


def aggregation_of(args: argparse.Namespace) -> model.Aggregation:
    if args.spec is not None:
        return specfile.load(args.spec)
    return validation.validate(json.loads(args.spec_json))


def jars_of(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(jar for jar in str(args.jars).split(",") if jar)


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
