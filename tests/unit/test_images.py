"""The container images: one naming scheme (clickagg/<directory of the Dockerfile>), every
image the chart or the operator names is one a Dockerfile here builds, and each Dockerfile
installs every third-party distribution its entry points import (issue 11, section 3).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from clickagg.domain import spec

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
CHART = ROOT / "charts" / "clickagg"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
DOCKERFILES = sorted(ROOT.glob("*/Dockerfile"))
_IMAGE_REFERENCE = re.compile(r"\bclickagg(?:/[a-z][a-z0-9-]*|-[a-z]+)?:[0-9][\w.-]*")

#: Distributions an image's base already holds (apache/spark ships pyspark as SPARK_HOME).
BASE_PROVIDES = {"jobs": {"pyspark"}}
#: Modules whose function-level imports do not run in an image: the service image runs only
#: `clickagg serve`, so the CLI's other commands (which import Spark lazily) never run there.
NOT_RUN = {"service": re.compile(r"^clickagg\.cli\.(?!serve_cmd$)")}


@dataclass(frozen=True)
class Dockerfile:
    path: Path
    text: str
    component: str  # the directory it is in, which names its image

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        return cls(path, path.read_text(), path.parent.name)

    @property
    def title(self) -> str:
        found = re.search(r'^LABEL org\.opencontainers\.image\.title="([^"]+)"', self.text, re.M)
        assert found, f"{self.path} has no org.opencontainers.image.title label"
        return found.group(1)

    @property
    def removed_packages(self) -> set[str]:
        return {
            f"clickagg.{name}" for name in re.findall(r"src/clickagg/(\w+)", self._run_lines("rm"))
        }

    @property
    def installed(self) -> set[str]:
        """Every distribution the pip lines install, with what those require in turn."""
        direct = [Requirement(q) for q in re.findall(r'"([^"]+)"', self._run_lines("pip"))]
        return _with_requirements(direct) | BASE_PROVIDES.get(self.component, set())

    @property
    def entry_modules(self) -> set[str]:
        modules = set(re.findall(r'"-m", "([\w.]+)"', self.text))
        if re.search(r'ENTRYPOINT \["clickagg"', self.text):
            scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
            modules.add(scripts["clickagg"].partition(":")[0])
            modules.add("clickagg.cli.serve_cmd")  # the one command the image runs
        for copied in re.findall(r"^COPY (\w+) \./\1$", self.text, re.M):
            for script in (ROOT / copied).glob("*.py"):
                modules |= _imports(ast.parse(script.read_text()), top_level_only=False)
        return {m for m in modules if m.startswith("clickagg")}

    def _run_lines(self, word: str) -> str:
        joined = self.text.replace("\\\n", " ")
        return "\n".join(
            line for line in joined.splitlines() if line.startswith("RUN") and word in line
        )


def _with_requirements(requirements: list[Requirement]) -> set[str]:
    found: set[str] = set()
    pending = [(r, frozenset(r.extras)) for r in requirements]
    while pending:
        requirement, extras = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in found and not extras:
            continue
        found.add(name)
        for text in importlib.metadata.requires(requirement.name) or []:
            needed = Requirement(text)
            environments = [{"extra": e} for e in extras] or [{"extra": ""}]
            if needed.marker is None or any(needed.marker.evaluate(e) for e in environments):
                pending.append((needed, frozenset(needed.extras)))
    return found


def _imports(tree: ast.AST, *, top_level_only: bool) -> set[str]:
    """Imported module names; `top_level_only` skips imports inside functions. Imports under
    `if TYPE_CHECKING:` never run and are skipped."""
    found: set[str] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if top_level_only and inside:
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                found.add(child.module)
                found.update(f"{child.module}.{alias.name}" for alias in child.names)
            visit(child, inside)

    visit(tree, False)
    return found


def _source(module: str) -> Path | None:
    base = SRC.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def closure(dockerfile: Dockerfile) -> tuple[set[str], set[str]]:
    """(clickagg modules, third-party top-level modules) the entry points reach."""
    not_run = NOT_RUN.get(dockerfile.component)
    ours: set[str] = set()
    theirs: set[str] = set()
    pending = sorted(dockerfile.entry_modules)
    while pending:
        module = pending.pop()
        path = _source(module)
        if module in ours or path is None:
            continue
        ours.add(module)
        parents = module.split(".")
        pending.extend(".".join(parents[:i]) for i in range(2, len(parents)))
        top_level_only = bool(not_run and not_run.match(module))
        for name in _imports(ast.parse(path.read_text()), top_level_only=top_level_only):
            if name.startswith("clickagg"):
                pending.append(name)
            elif name.split(".")[0] not in sys.stdlib_module_names:
                theirs.add(name.split(".")[0])
    return ours, theirs


def _distributions(top_level: str) -> set[str]:
    names = importlib.metadata.packages_distributions().get(top_level, [])
    assert names, f"no installed distribution provides the module {top_level}"
    return {canonicalize_name(n) for n in names}


def built_images() -> dict[str, Dockerfile]:
    return {(d := Dockerfile.read(p)).title: d for p in DOCKERFILES}


def referenced_images() -> Iterator[tuple[str, str]]:
    """(where, image reference) for every image the chart, the operator or the docs name."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    for where, image in (
        ("values.yaml image", values["image"]),
        ("values.yaml service.image", values["service"]["image"]),
    ):
        yield where, f"{image['repository']}:{image['tag'] or app_version}"
    yield "spec.spark.image default", spec.SparkSpec.model_fields["image"].default
    documents = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *CHART.rglob("*.yaml")]
    documents += [*CHART.rglob("*.tpl"), *CHART.rglob("*.txt"), *DOCKERFILES]
    for document in documents:
        for reference in _IMAGE_REFERENCE.findall(document.read_text()):
            yield str(document.relative_to(ROOT)), reference


def test_every_dockerfile_names_its_image_after_its_directory() -> None:
    assert {d.component for d in built_images().values()} == {"operator", "jobs", "service"}
    for title, dockerfile in built_images().items():
        assert title == f"clickagg/{dockerfile.component}"
        assert f"-t {title}:{VERSION} " in dockerfile.text, "its build comment names the image"


@pytest.mark.parametrize(("where", "image"), sorted(set(referenced_images())))
def test_every_referenced_image_is_built_here(where: str, image: str) -> None:
    repository, _, tag = image.rpartition(":")
    assert repository in built_images(), f"{where} names {image}, which no Dockerfile builds"
    assert tag == VERSION, f"{where} names {image}, not this version {VERSION}"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_installs_what_its_entry_points_import(path: Path) -> None:
    dockerfile = Dockerfile.read(path)
    ours, theirs = closure(dockerfile)
    assert dockerfile.entry_modules <= ours, "every entry module is in the image"
    removed = {m for m in ours for gone in dockerfile.removed_packages if m.startswith(gone)}
    assert not removed, f"the entry points import packages the image removes: {sorted(removed)}"
    missing = {
        top_level: sorted(_distributions(top_level))
        for top_level in theirs
        if not _distributions(top_level) & dockerfile.installed
    }
    assert not missing, f"{path} does not install what its entry points import: {missing}"
