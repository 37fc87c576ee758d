"""The reference spec is valid; every bad example fails with the message its header names."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from clickagg import errors
from clickagg.domain import kpis, plan, specfile, validation
from examples import BAD, GOOD, bad_example

pytestmark = pytest.mark.unit


@pytest.fixture
def reference() -> dict[str, Any]:
    return dict(yaml.safe_load((GOOD[0].parent / "shop-kpis.yaml").read_text()))


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_every_example_is_valid(path: Path) -> None:
    specfile.load(path)


def test_reference_has_the_seed_shape(reference: dict[str, Any]) -> None:
    aggregation = validation.validate(reference)
    assert len(aggregation.dimensions) == 10
    assert aggregation.kpis == tuple(kpis.CATALOGUE)
    assert len(aggregation.kpis) == 26
    assert [(lv.name, lv.retention_text) for lv in aggregation.levels] == [
        ("15m", "30d"),
        ("1h", "4mo"),
        ("1d", "2y"),
    ]
    assert [lv.collection for lv in aggregation.levels] == [
        "shop-kpis-15m",
        "shop-kpis-1h",
        "shop-kpis-1d",
    ]
    landing = aggregation.dimension("landing_page")
    assert (landing.field, landing.scope) == ("page", "visit")
    assert aggregation.dimension("content").scope == "event"


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_every_bad_example_names_its_field(path: Path) -> None:
    expected = bad_example(path)
    with pytest.raises(errors.SpecFileError) as caught:
        specfile.load(path)
    messages = [str(issue) for issue in caught.value.issues]
    assert any(expected.expect_validate in m for m in messages), messages
    # Each issue points at a line of the file.
    assert all(item.line for item in caught.value.located)


def test_the_seed_retention_mistake_points_at_its_line() -> None:
    path = next(p for p in BAD if p.name == "retention-in-minutes.yaml")
    with pytest.raises(errors.SpecFileError) as caught:
        specfile.load(path)
    (item,) = caught.value.located
    assert path.read_text().splitlines()[item.line - 1].strip() == (  # type: ignore[operator]
        "- {granularity: 1h, retention: 4m}"
    )


def test_all_problems_are_reported_at_once(reference: dict[str, Any]) -> None:
    broken = copy.deepcopy(reference)
    broken["metadata"]["name"] = "Bad Name"
    broken["spec"]["kpis"] = ["visits", "nope"]
    broken["spec"]["cuboids"] = [{"dimensions": ["channel", "nowhere"]}]
    broken["spec"]["levels"][1]["retention"] = "1d"
    with pytest.raises(errors.SpecError) as caught:
        validation.validate(broken)
    paths = sorted(issue.path for issue in caught.value.issues)
    assert paths == [
        "metadata.name",
        "spec.cuboids[0].dimensions[1]",
        "spec.kpis[1]",
        "spec.levels[1].retention",
        "spec.levels[2].granularity",
    ]


def test_defaults_are_totals_plus_each_dimension_and_every_kpi(
    reference: dict[str, Any],
) -> None:
    del reference["spec"]["cuboids"], reference["spec"]["kpis"]
    aggregation = validation.validate(reference)
    assert aggregation.cuboids[0].name == "totals"
    assert [c.name for c in aggregation.cuboids[1:]] == [d.name for d in aggregation.dimensions]
    assert len(aggregation.kpis) == 26


def test_cuboid_order_does_not_matter_and_duplicates_fail(reference: dict[str, Any]) -> None:
    reference["spec"]["cuboids"] = [
        {"dimensions": ["campaign", "channel"]},
        {"dimensions": ["channel", "campaign"]},
    ]
    with pytest.raises(errors.SpecError, match="cuboid channel\\+campaign is declared twice"):
        validation.validate(reference)


def test_calendar_levels_nest_on_days(reference: dict[str, Any]) -> None:
    reference["spec"]["levels"] += [{"granularity": "1mo", "retention": "forever"}]
    aggregation = validation.validate(reference)
    assert aggregation.levels[-1].retention is None
    assert plan.build(aggregation).documents_kept is None


def test_weeks_do_not_tile_months(reference: dict[str, Any]) -> None:
    reference["spec"]["levels"] = [
        {"granularity": "1d", "retention": "60d"},
        {"granularity": "1w", "retention": "1y"},
        {"granularity": "1mo", "retention": "2y"},
    ]
    with pytest.raises(errors.SpecError, match="is not a multiple of the finer level's 1w"):
        validation.validate(reference)


def test_finer_level_must_be_kept_long_enough_to_roll_up(reference: dict[str, Any]) -> None:
    reference["spec"]["levels"] = [
        {"granularity": "15m", "retention": "12h"},
        {"granularity": "1d", "retention": "30d"},
    ]
    with pytest.raises(errors.SpecError, match="rolled up from level 15m, which is kept only 12h"):
        validation.validate(reference)


def test_trigger_must_be_shorter_than_the_finest_bucket(reference: dict[str, Any]) -> None:
    reference["spec"]["spark"]["triggerInterval"] = "15m"
    with pytest.raises(errors.SpecError, match=r"spec\.spark\.triggerInterval"):
        validation.validate(reference)


@pytest.mark.parametrize(
    ("spark", "path", "message"),
    [
        ({"autoscale": True}, "spec.spark.executor.maxInstances", "is required"),
        (
            {"autoscale": True, "executor": {"instances": 9, "maxInstances": 8}},
            "spec.spark.executor.instances",
            "9 must lie within minInstances 1 and maxInstances 8",
        ),
        (
            {"executor": {"minInstances": 2}},
            "spec.spark.executor.minInstances",
            "has no effect without spec.spark.autoscale: true",
        ),
    ],
)
def test_autoscale_bounds_are_checked(
    reference: dict[str, Any], spark: dict[str, Any], path: str, message: str
) -> None:
    reference["spec"]["spark"] = spark
    with pytest.raises(errors.SpecError) as raised:
        validation.validate(reference)
    messages = {issue.path: issue.message for issue in raised.value.issues}
    assert message in messages[path]


def test_autoscale_within_bounds_is_valid(reference: dict[str, Any]) -> None:
    executor = {"instances": 2, "minInstances": 1, "maxInstances": 6}
    reference["spec"]["spark"] = {"autoscale": True, "executor": executor}
    aggregation = validation.validate(reference)
    assert aggregation.spec.spark.executor.max_instances == 6


def test_plan_counts_levels_times_cuboids(reference: dict[str, Any]) -> None:
    aggregation = validation.validate(reference)
    estimate = plan.build(aggregation)
    assert len(estimate.rows) == len(aggregation.levels) * len(aggregation.cuboids)
    totals = {(r.level, r.cuboid): r for r in estimate.rows}
    assert totals[("15m", "totals")].documents_per_day == 96
    assert totals[("1h", "channel")].documents_per_day == 24 * 21
    assert totals[("15m", "totals")].documents_kept == pytest.approx(96 * 30)


# Found by the fuzz test (test_fuzz_spec.py): each of these raised something other than
# SpecError, or passed without a word.
def test_metadata_that_is_no_object_is_an_issue(reference: dict[str, Any]) -> None:
    reference["metadata"] = [1]
    with pytest.raises(errors.SpecError) as caught:
        validation.validate(reference)
    assert "metadata: expected an object, got [1]" in [str(i) for i in caught.value.issues]


def test_a_name_that_is_no_string_is_an_issue(reference: dict[str, Any]) -> None:
    reference["metadata"] = {"name": ["x"], "namespace": 7}
    with pytest.raises(errors.SpecError) as caught:
        validation.validate(reference)
    assert [str(i) for i in caught.value.issues] == [
        "metadata.name: expected a string, got ['x']",
        "metadata.namespace: expected a string, got 7",
    ]


def test_a_retention_of_millennia_is_an_issue(reference: dict[str, Any]) -> None:
    reference["spec"]["levels"][2]["retention"] = "1" + "0" * 400 + "y"
    with pytest.raises(errors.SpecError) as caught:
        validation.validate(reference)
    [issue] = caught.value.issues
    assert issue.path == "spec.levels[2].retention"
    assert "is longer than 10000 years; a retention without end is `forever`" in issue.message


def test_a_bound_beyond_any_float_gives_no_advisory(reference: dict[str, Any]) -> None:
    reference["spec"]["limits"] = {"maxDocumentsPerDay": 10**400}
    assert validation.advisories(validation.validate(reference)) == []


def test_a_file_that_is_not_utf8_is_an_issue(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"apiVersion: clickagg.io/v1alpha1\nkind: Aggr\xe9gation\n")
    with pytest.raises(errors.SpecFileError) as caught:
        specfile.load(path)
    [issue] = caught.value.located
    assert str(issue) == f"{path}:2: (file): not valid UTF-8 (byte 43)"


def test_a_file_nested_too_deeply_is_an_issue() -> None:
    with pytest.raises(errors.SpecFileError) as caught:
        specfile.parse("[" * 5000, Path("deep.yaml"))
    assert [str(i) for i in caught.value.located] == ["deep.yaml: (file): nested too deeply"]


def test_a_key_written_twice_is_an_issue() -> None:
    text = (GOOD[0].parent / "shop-kpis.yaml").read_text()
    text = text.replace("    shards: 2\n", "    shards: 2\n    shards: 3\n")
    with pytest.raises(errors.SpecFileError) as caught:
        specfile.parse(text, Path("twice.yaml"))
    line = text.splitlines().index("    shards: 3") + 1
    assert [str(i) for i in caught.value.located] == [
        f"twice.yaml:{line}: spec.solr.shards: appears twice"
    ]
