"""Everything that runs in Spark: session, archive, parsing, sessionizing, cell sums, the
streaming queries and replay."""
