"""Starting and finding the local SolrCloud: taken ports fail early, a running cluster is reused."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from clickagg import errors
from clickagg.local import process
from clickagg.local import solr as local_solr

pytestmark = pytest.mark.solr


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port held open for the whole test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.fixture
def empty_run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # No cluster runs here, so up() must really try to start one.
    monkeypatch.setenv("CLICKAGG_RUN_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.usefixtures("empty_run_dir")
def test_a_taken_zookeeper_port_fails_before_launch(taken_port: int) -> None:
    with pytest.raises(errors.PortInUse, match=rf"ZooKeeper port {taken_port}\b"):
        local_solr.up(zk_port=taken_port, ports=(process.free_port(), process.free_port()))
    assert local_solr.status() is None


@pytest.mark.usefixtures("empty_run_dir")
def test_a_taken_node_port_fails_before_launch(taken_port: int) -> None:
    with pytest.raises(errors.PortInUse, match=rf"Solr node 2 port {taken_port}\b"):
        local_solr.up(zk_port=process.free_port(), ports=(process.free_port(), taken_port))
    assert local_solr.status() is None


def test_up_returns_the_running_cluster(solr: local_solr.SolrEndpoints) -> None:
    assert local_solr.status() == solr
    assert local_solr.up() == solr


def test_a_missing_jdk_is_reported_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An empty cache forces a build; an empty PATH has neither java nor mvn.
    monkeypatch.setenv("CLICKAGG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(errors.ToolchainMissing, match="'java' is not on PATH: install a JDK 17"):
        local_solr.install()
