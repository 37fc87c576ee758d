"""Spark tasks that run where their data lives, from PySpark.

PySpark's `parallelize` and its Python data sources cannot declare preferred locations;
Spark's own `SparkContext.makeRDD(Seq[(T, Seq[host])])` can (one partition per item). So
`rdd_preferring` pickles each item in Python, hands the items and their hosts to it through
py4j, and wraps the JVM RDD as an ordinary Python RDD: a `map` over it is a narrow
dependency, and the scheduler gives its tasks the parent's preferred hosts (NODE_LOCAL when
an executor runs there). No JVM code of our own is needed.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any

from pyspark import SparkContext
from pyspark.rdd import RDD
from pyspark.serializers import CPickleSerializer


def rdd_preferring(context: SparkContext, items: Sequence[tuple[Any, Sequence[str]]]) -> RDD[Any]:
    """One partition per (item, hosts), each preferring its hosts, as a Python RDD."""
    jvm = context._jvm
    assert jvm is not None
    serializer = CPickleSerializer()
    located = [
        jvm.scala.Tuple2(
            serializer.dumps(item),  # type: ignore[no-untyped-call]
            jvm.PythonUtils.toSeq(list(hosts)),
        )
        for item, hosts in items
    ]
    class_tag = jvm.scala.reflect.ClassTag.AnyRef()  # the items are byte arrays
    java_rdd = context._jsc.sc().makeRDD(jvm.PythonUtils.toSeq(located), class_tag)
    return RDD(java_rdd.toJavaRDD(), context, serializer)


def own_host() -> str:
    """The host this process runs on, as Spark names it: the address it binds
    (SPARK_LOCAL_IP, which a standalone worker passes to its executors), else the hostname."""
    return os.environ.get("SPARK_LOCAL_IP") or socket.gethostname()
