"""clickagg: real-time clickstream analytics on Spark and SolrCloud."""

__version__ = "0.1.0"
