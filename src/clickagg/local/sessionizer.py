"""The JVM sessionizer's jar, built by Maven from the repo into the cache (first use only).

Local sessions and tests put it on `spark.jars`; the deployed job gets it from its image.
"""

from __future__ import annotations

from pathlib import Path

from clickagg.local import maven

SOURCES = Path(__file__).resolve().parents[1] / "pipeline" / "sessionizer_jvm"


def jar() -> Path:
    return maven.build("sessionizer", SOURCES, package_jar=True).jar
