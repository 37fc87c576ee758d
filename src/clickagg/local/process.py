"""Start, find and stop the local engines as detached processes with a state file.

`clickagg local up` and the pytest fixtures share this, so a stack started by one
can be seen and stopped by the other.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clickagg import errors
from clickagg.local import cache

LOOPBACK = "127.0.0.1"
# Two more loopback addresses stand for two machines: Solr nodes and Spark workers bind them
# so that shards and executors have real, distinct hosts (Linux routes all of 127/8 to lo).
NODE_HOSTS = ("127.0.0.2", "127.0.0.3")


def require_tool(name: str, hint: str) -> str:
    """The full path of program `name`, or ToolchainMissing saying how to get it."""
    path = shutil.which(name)
    if path is None:
        raise errors.ToolchainMissing(f"'{name}' is not on PATH: {hint}")
    return path


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def ensure_ports_free(ports: Mapping[str, int], host: str = LOOPBACK) -> None:
    """Fail with PortInUse naming every port taken on `host` and what needed it."""
    taken = [f"{what} port {port}" for what, port in ports.items() if not port_is_free(port, host)]
    if taken:
        raise errors.PortInUse(
            f"already in use on {host}: "
            + ", ".join(taken)
            + " (stop what holds it, or choose other ports)"
        )


def free_port() -> int:
    """A loopback port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int, besides: Sequence[int] = ()) -> list[int]:
    """`count` distinct loopback ports, free right now and none of `besides`.

    The OS may hand out the same free port twice in a row, so each is checked.
    """
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports and port not in besides:
            ports.append(port)
    return ports


@dataclass(frozen=True)
class Running:
    """A started engine: its pid, log file and the endpoints it serves."""

    name: str
    pid: int
    log: Path
    endpoints: dict[str, Any]


def _state_file(name: str) -> Path:
    return cache.run_dir(name) / "state.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); treat it as dead.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def status(name: str) -> Running | None:
    """The running engine called `name`, or None when it is not running."""
    path = _state_file(name)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    if not _alive(int(data["pid"])):
        path.unlink(missing_ok=True)
        return None
    return Running(name, int(data["pid"]), Path(data["log"]), dict(data["endpoints"]))


def start(
    name: str,
    argv: Sequence[str],
    *,
    endpoints: Mapping[str, Any],
    ready: str | Callable[[], bool],
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Running:
    """Launch `argv` detached, wait until it is ready, and record it.

    `ready` is a regex looked for in the log, or a callable polled until it
    returns True. On timeout or early exit the process is stopped and the log
    tail is part of the error.
    """
    log = cache.run_dir(name) / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    running = Running(name, proc.pid, log, dict(endpoints))
    deadline = time.monotonic() + timeout
    pattern = re.compile(ready) if isinstance(ready, str) else None
    while True:
        if proc.poll() is not None:
            raise errors.LocalStackError(
                f"{name} exited with code {proc.returncode} while starting; log {log}:\n"
                + _tail(log)
            )
        if pattern is not None:
            if pattern.search(log.read_text(errors="replace")):
                break
        elif callable(ready) and ready():
            break
        if time.monotonic() > deadline:
            _terminate(proc.pid, grace=5)
            raise errors.StartupTimeout(
                f"{name} was not ready after {timeout:.0f}s; log {log}:\n" + _tail(log)
            )
        time.sleep(0.25)
    _state_file(name).write_text(
        json.dumps({"pid": proc.pid, "log": str(log), "endpoints": dict(endpoints)})
    )
    return running


def stop(name: str, grace: float = 20) -> bool:
    """Stop the engine `name` (SIGTERM, then SIGKILL after `grace` s). True if it ran."""
    running = status(name)
    if running is None:
        return False
    _terminate(running.pid, grace)
    _state_file(name).unlink(missing_ok=True)
    return True


def kill(name: str, timeout: float = 30) -> bool:
    """SIGKILL the engine `name`'s process group, as a crash would: no shutdown hook runs.
    Returns once it is gone; True if it ran."""
    running = status(name)
    if running is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(running.pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while _alive(running.pid) and time.monotonic() < deadline:
        _reap(running.pid)
        time.sleep(0.05)
    _reap(running.pid)
    _state_file(name).unlink(missing_ok=True)
    return True


def _terminate(pid: int, grace: float) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid):
            _reap(pid)
            return
        _reap(pid)
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
