"""The stream's metrics count what the (stream, batch) guard skipped, next to what it wrote."""

from __future__ import annotations

import pytest

from clickagg.pipeline import metrics
from clickagg.store import protocol

pytestmark = pytest.mark.unit


def test_skipped_cells_are_counted_and_described() -> None:
    job_metrics = metrics.StreamMetrics("shop")
    job_metrics.record_solr_write(protocol.WriteReport(written=7, skipped=0, seconds=0.1))
    job_metrics.record_solr_write(protocol.WriteReport(written=0, skipped=5, seconds=0.1))
    assert job_metrics.value("clickagg_solr_cells_written_total") == 7
    assert job_metrics.value("clickagg_solr_cells_skipped_total") == 5
    assert "# TYPE clickagg_solr_cells_skipped_total counter" in job_metrics.render()
