"""The CRD and docs/spec.md are generated from the spec model; drift fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from clickagg.cli import main
from clickagg.domain import crd, spec_doc

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_crd_matches_the_model() -> None:
    checked_in = (ROOT / main.CRD_PATH).read_text()
    assert checked_in == main.render_crd(), "CRD drifted from clickagg.domain.spec: run make crd"


def test_spec_reference_doc_matches_the_model() -> None:
    checked_in = (ROOT / main.SPEC_DOC_PATH).read_text()
    assert checked_in == spec_doc.render(), "docs/spec.md drifted: run make crd"


def test_every_field_has_a_description() -> None:
    schema = crd.definition()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert crd.undocumented_fields(schema) == []


def test_crd_names_and_columns() -> None:
    definition = yaml.safe_load((ROOT / main.CRD_PATH).read_text())
    names = definition["spec"]["names"]
    assert (names["kind"], names["shortNames"], definition["spec"]["scope"]) == (
        "Aggregation",
        ["agg"],
        "Namespaced",
    )
    version = definition["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[:4] == ["Levels", "Ready", "Rollups", "Lag"]
