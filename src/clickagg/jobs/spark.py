"""The SparkSession a job runs in: spark-submit's, or a local one for the CLI and the demo."""

from __future__ import annotations

from pyspark.sql import SparkSession

from clickagg.pipeline import session


def session_for(app_name: str, master: str | None, jars: tuple[str, ...]) -> SparkSession:
    """spark-submit's session when `master` is None; else a local one on that master."""
    if master is None:
        return session.session(app_name)
    conf = {"spark.master": master}
    if jars:
        conf["spark.jars"] = ",".join(jars)
    return session.local_session(app_name, conf=conf)
