"""How the CLI shows plans and stack status: rich tables, one idea per table."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from clickagg.domain import model, plan


def _count(value: float | None) -> str:
    if value is None:
        return "grows forever"
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}"


def plan_tables(console: Console, aggregation: model.Aggregation, estimate: plan.Plan) -> None:
    """Levels, then cuboids × levels, with documents a day and within retention."""
    levels = Table(
        title=f"Aggregation {aggregation.namespace}/{aggregation.name}: levels", box=box.SIMPLE
    )
    # Estimates: each dimension at its declared maxCardinality, every combination present.
    for column in ("level", "retention", "collection", "docs/day (est.)", "docs kept (est.)"):
        levels.add_column(column, justify="right" if "docs" in column else "left")
    totals = estimate.level_totals()
    for level in aggregation.levels:
        per_day, kept = totals[level.name]
        levels.add_row(
            level.name, level.retention_text, level.collection, _count(per_day), _count(kept)
        )
    console.print(levels)

    cells = Table(
        title="cuboids × levels: documents a day (at the declared cardinalities)", box=box.SIMPLE
    )
    cells.add_column("cuboid")
    cells.add_column("combinations", justify="right")
    for level in aggregation.levels:
        cells.add_column(level.name, justify="right")
    by_cell = {(row.cuboid, row.level): row for row in estimate.rows}
    for cuboid in aggregation.cuboids:
        first = by_cell[(cuboid.name, aggregation.finest.name)]
        cells.add_row(
            cuboid.name,
            _count(first.combinations),
            *(
                _count(by_cell[(cuboid.name, lv.name)].documents_per_day)
                for lv in aggregation.levels
            ),
        )
    console.print(cells)
    console.print(
        f"{len(aggregation.levels)} levels × {len(aggregation.cuboids)} cuboids, "
        f"{len(aggregation.kpis)} KPIs; about {_count(estimate.documents_per_day)} documents "
        f"a day, {_count(estimate.documents_kept)} kept "
        f"(bound {aggregation.spec.limits.max_documents_per_day:,} a day)."
    )
