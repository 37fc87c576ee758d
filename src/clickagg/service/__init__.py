"""The KPI service and its dashboard (`clickagg serve`): a thin shell over the store and domain.

It reads Solr only through `store.protocol.KpiStore` and never imports pyspark.
"""
