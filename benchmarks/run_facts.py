"""What every benchmark records next to its figures: machine, load, commit, verdict.

The scripts run as `python benchmarks/<name>.py`, so this module is importable by name.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{memory_kb / 2**20:.0f} GiB",
        "python": platform.python_version(),
        "java": (java.stderr.splitlines() or ["?"])[0],
    }


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def git_commit(measured: Sequence[str]) -> str:
    """The short commit, marked when the `measured` paths have uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    changed = git("status", "--porcelain", "--untracked-files=no", "--", *measured)
    dirty = f" (with uncommitted changes in {' or '.join(measured)})" if changed else ""
    return git("rev-parse", "--short", "HEAD") + dirty


def verdict(met: bool) -> str:
    return "**met**" if met else "**not met**"


def append_section(docs: Path, heading: str, intro: str, section: str) -> None:
    """Append a run to docs/benchmarks.md, with the benchmark's intro the first time.
    Append only: other engineers write other sections."""
    text = docs.read_text() if docs.exists() else "# Benchmarks\n"
    with docs.open("a") as out:
        out.write(("" if heading in text else intro) + section)
