"""The query service and dashboard (REST over `store.protocol.CellStore`): not written yet.

It is a shell like the operator and the jobs: it may import the store and the domain, never
pyspark (see the import contracts in pyproject.toml).
"""
