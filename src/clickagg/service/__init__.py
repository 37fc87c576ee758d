"""The KPI service and its dashboard (`clickagg serve`): a thin shell over the store and domain.

It reads Solr only through `kpi_store.KpiStore` and never imports pyspark.
"""
