"""Maven projects kept in the repo, resolved (and compiled) once into the cache.

The Solr launcher, the Kafka broker and Spark's Kafka connector are each a small Maven
project. A build lives in a cache directory named after a digest of the project's files,
so an edit gives a new build and an unchanged project resolves instantly.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from clickagg import errors
from clickagg.local import cache, process

JDK_HINT = "install a JDK 17 and Maven (Debian: apt-get install openjdk-17-jdk-headless maven)"


@dataclass(frozen=True)
class Build:
    """A resolved project: its compiled classes (if any) and its dependency jars."""

    directory: Path
    jars: tuple[Path, ...]
    compiled: bool

    @property
    def classes(self) -> Path:
        return self.directory / "target" / "classes"

    @property
    def jar(self) -> Path:
        """The project's own jar, for a project built with `package_jar`."""
        found = sorted((self.directory / "target").glob("*.jar"))
        if len(found) != 1:
            raise errors.LocalStackError(f"expected one jar in {self.directory / 'target'}")
        return found[0]

    def classpath(self) -> str:
        entries = ([str(self.classes)] if self.compiled else []) + [str(j) for j in self.jars]
        return os.pathsep.join(entries)


def build(
    name: str, project: Path, *, compile_sources: bool = False, package_jar: bool = False
) -> Build:
    """Resolve `project` (a directory with a pom.xml) into the cache, once; compile its
    sources, or package them into a jar (for `spark.jars`)."""
    directory = cache.tool_dir(name, digest(project))
    listing = directory / "classpath.txt"
    if listing.exists():
        found = _build_of(directory, listing, compile_sources or package_jar)
        if all(jar.exists() for jar in found.jars):  # the Maven repository may have been wiped
            return found
    process.require_tool("java", JDK_HINT)
    mvn = process.require_tool("mvn", JDK_HINT)
    _progress(f"resolving {name} with Maven into {directory} (first run only)")
    started = time.monotonic()
    _copy_project(project, directory)
    partial = directory / "classpath.txt.partial"
    goals = ["package"] if package_jar else ["compile"] if compile_sources else []
    _run(
        mvn, directory, [*goals, "dependency:build-classpath", f"-Dmdep.outputFile={partial}"], name
    )
    partial.replace(listing)  # last, so an interrupted build is never taken for a done one
    _progress(f"{name} resolved in {time.monotonic() - started:.1f}s")
    return _build_of(directory, listing, compile_sources or package_jar)


def digest(project: Path) -> str:
    """A digest of every file of the project except Maven's output."""
    hasher = hashlib.sha256()
    for path in sorted(p for p in project.rglob("*") if p.is_file()):
        relative = path.relative_to(project)
        if "target" in relative.parts:
            continue
        hasher.update(relative.as_posix().encode() + b"\0" + path.read_bytes())
    return hasher.hexdigest()[:12]


def _build_of(directory: Path, listing: Path, compiled: bool) -> Build:
    jars = tuple(Path(e) for e in listing.read_text().strip().split(os.pathsep) if e)
    return Build(directory, jars, compiled)


def _copy_project(project: Path, directory: Path) -> None:
    # Building in the cache keeps Maven's target/ out of the repo.
    for path in project.iterdir():
        target = directory / path.name
        if path.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(path, target)
        else:
            shutil.copy2(path, target)


def _run(mvn: str, directory: Path, goals: list[str], name: str) -> None:
    argv = [mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(directory / "pom.xml"), *goals]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=directory)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-40:])
        raise errors.LocalStackError(f"Maven failed for {name} (exit {result.returncode}):\n{tail}")


def _progress(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)
