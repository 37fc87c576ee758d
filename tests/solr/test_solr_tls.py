"""A SolrCloud serving https only (with BasicAuth too), and the store client against it.

The session's secured 2-node cluster (fixtures.solr.secure_solr, the e2e tier's Solr too):
clients verify the nodes against the cluster's CA, from an argument or from
$CLICKAGG_SOLR_CA_FILE; without it, or over plain http, they fail with a SolrTlsError that
says what to do. The nodes talk to each other over https too (a distributed update, query
and /export across both), and the key store's password appears nowhere.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509

from clickagg import errors
from clickagg.domain import certificates
from clickagg.local import process, solr_security, solr_tls
from clickagg.local import solr as local_solr
from clickagg.store import client as store_client
from clickagg.store import collections as solr_collections
from clickagg.store import credentials
from fixtures import solr as fixtures_solr

pytestmark = pytest.mark.solr

INSTANCE = fixtures_solr.SECURE_INSTANCE


@pytest.fixture(autouse=True)
def no_environment_trust(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        credentials.CA_FILE_ENV,
        credentials.USERNAME_ENV,
        credentials.PASSWORD_ENV,
        credentials.PASSWORD_FILE_ENV,
    ):
        monkeypatch.delenv(name, raising=False)


def pair(role: str) -> tuple[str, str]:
    return local_solr.credentials(role, INSTANCE)


def ca_file() -> Path:
    return local_solr.ca_file(INSTANCE)


@pytest.fixture(scope="module")
def tls_collection(secure_solr: local_solr.SolrEndpoints) -> Iterator[str]:
    """A 2-shard collection, one shard per node, created by the operator's user."""
    name = f"tls_{uuid.uuid4().hex[:8]}"
    operator = pair(solr_security.OPERATOR)
    with store_client.SolrClient(secure_solr.base_url, auth=operator, ca_file=ca_file()) as admin:
        admin.create_collection(name, solr_collections.CONFIGSET_NAME, 2, 1)
    yield name
    with store_client.SolrClient(secure_solr.base_url, auth=operator, ca_file=ca_file()) as admin:
        admin.delete_collection(name)


def test_keys_and_stores_are_owner_only_and_name_the_node_hosts(
    secure_solr: local_solr.SolrEndpoints,
) -> None:
    assert secure_solr.tls and secure_solr.auth
    assert all(url.startswith("https://") for url in secure_solr.node_urls)
    directory = local_solr.tls_dir(INSTANCE)
    assert directory.stat().st_mode & 0o077 == 0
    for name in (
        solr_tls.CA_FILE,
        solr_tls.KEYSTORE_FILE,
        solr_tls.KEYSTORE_PASSWORD_FILE,
        solr_tls.TRUSTSTORE_FILE,
    ):
        assert (directory / name).stat().st_mode & 0o777 == 0o600, name
    ca = x509.load_pem_x509_certificate(ca_file().read_bytes())
    assert ca.subject.rfc4514_string() == f"CN={solr_tls.CA_NAME}"
    # The node certificate each node presents names both node addresses.
    for host, url in zip(process.NODE_HOSTS, secure_solr.node_urls, strict=True):
        port = int(url.split(":")[2].split("/")[0])
        served = x509.load_pem_x509_certificate(ssl.get_server_certificate((host, port)).encode())
        names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        addresses = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
        assert {str(ipaddress.ip_address(h)) for h in process.NODE_HOSTS} <= addresses
        assert served.issuer == ca.subject


def test_https_works_with_the_ca(secure_solr: local_solr.SolrEndpoints) -> None:
    with store_client.SolrClient(
        secure_solr.base_url, auth=pair(solr_security.QUERY), ca_file=ca_file()
    ) as client:
        assert client.ping()
        status = client.cluster_status()
    assert status.get("properties", {}).get("urlScheme") == "https"
    assert sorted(status["live_nodes"]) == sorted(
        secure_solr.node_name(i) for i in range(len(secure_solr.node_urls))
    )


def test_a_client_without_the_ca_fails_naming_the_ca_variable(
    secure_solr: local_solr.SolrEndpoints, tls_collection: str
) -> None:
    with store_client.SolrClient(secure_solr.base_url, auth=pair(solr_security.QUERY)) as client:
        assert client.ca_file is None
        with pytest.raises(errors.SolrTlsError) as caught:
            client.query(tls_collection, {"q": "*:*"})
    message = str(caught.value)
    assert credentials.CA_FILE_ENV in message
    assert "the system's CAs" in message
    assert "certificate verify failed" in message


def test_a_client_trusting_another_ca_fails_naming_its_file(
    secure_solr: local_solr.SolrEndpoints, tmp_path: Path
) -> None:
    other = certificates.ensure(None, list(process.NODE_HOSTS), ca_name="some-other-ca")
    bundle = tmp_path / "other-ca.crt"
    bundle.write_bytes(other.ca_bundle)
    with (
        store_client.SolrClient(
            secure_solr.base_url, auth=pair(solr_security.QUERY), ca_file=bundle
        ) as client,
        pytest.raises(errors.SolrTlsError) as caught,
    ):
        client.cluster_status()
    assert str(bundle) in str(caught.value)
    assert credentials.CA_FILE_ENV in str(caught.value)


def test_a_ca_variable_naming_no_certificate_fails_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(credentials.CA_FILE_ENV, str(tmp_path / "missing.crt"))
    with pytest.raises(errors.SolrTlsError, match=credentials.CA_FILE_ENV):
        store_client.SolrClient("https://127.0.0.2:1/solr")


def test_plain_http_to_the_tls_port_fails(
    secure_solr: local_solr.SolrEndpoints, tls_collection: str
) -> None:
    plain = secure_solr.base_url.replace("https://", "http://", 1)
    with (
        store_client.SolrClient(plain, auth=pair(solr_security.QUERY), ca_file=ca_file()) as client,
        pytest.raises(errors.SolrTlsError) as caught,
    ):
        client.query(tls_collection, {"q": "*:*"})
    assert "serves https only" in str(caught.value)


def test_nodes_talk_https_to_each_other_for_updates_queries_and_export(
    secure_solr: local_solr.SolrEndpoints, tls_collection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The jobs' set-up: user, password file and CA bundle from the environment.
    for name, value in {
        **local_solr.credentials_env(solr_security.JOBS, INSTANCE),
        **local_solr.tls_env(INSTANCE),
    }.items():
        monkeypatch.setenv(name, value)
    docs = [{"id": f"doc-{i:03d}"} for i in range(60)]
    with store_client.SolrClient(secure_solr.node_url(0)) as jobs:
        assert jobs.ca_file == ca_file()
        status = jobs.cluster_status()
        replicas = [
            replica
            for shard in status["collections"][tls_collection]["shards"].values()
            for replica in shard["replicas"].values()
        ]
        # One shard on each node, each reached over https.
        assert sorted(r["node_name"] for r in replicas) == sorted(
            secure_solr.node_name(i) for i in range(2)
        )
        assert all(r["base_url"].startswith("https://") for r in replicas)
        # Sent to node 0, the update is forwarded to the other node's shard leader.
        jobs.add(tls_collection, docs)
        jobs.commit(tls_collection)
    with store_client.SolrClient(secure_solr.node_url(1)) as reader:
        # A distributed query from node 1 gathers both shards.
        found = reader.query(tls_collection, {"q": "*:*", "rows": 0})["response"]["numFound"]
        per_shard = reader.query(tls_collection, {"q": "*:*", "rows": 0, "shards.info": "true"})[
            "shards.info"
        ]
        # /export through a streaming expression asks both nodes' cores.
        exported = list(reader.export(tls_collection, "id:doc-*", ["id"], "id asc"))
    assert found == len(docs)
    assert len(per_shard) == 2
    assert all(info["numFound"] > 0 for info in per_shard.values())
    assert [doc["id"] for doc in exported] == [doc["id"] for doc in docs]


def test_no_keystore_password_in_any_log_or_answer(
    secure_solr: local_solr.SolrEndpoints,
    tls_collection: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    password = solr_tls.keystore_password(local_solr.tls_dir(INSTANCE))
    assert len(password) >= 24
    operator = pair(solr_security.OPERATOR)
    answers = []
    # The operator may read every node's system properties and JVM arguments.
    for url in secure_solr.node_urls:
        for path in ("admin/info/properties", "admin/info/system"):
            response = requests.get(
                f"{url}/{path}", auth=operator, verify=str(ca_file()), timeout=30
            )
            assert response.status_code == 200, (url, path, response.status_code)
            answers.append(response.text)
    with store_client.SolrClient(secure_solr.base_url, ca_file=ca_file()) as anonymous:
        try:
            anonymous.query(tls_collection, {"q": "*:*"})
        except errors.SolrAuthError as exc:
            logging.getLogger(__name__).warning("refused: %s", exc)
    out, err = capfd.readouterr()
    running = process.status(INSTANCE)
    assert running is not None
    cmdline = Path(f"/proc/{running.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    texts = {
        "captured log records": caplog.text,
        "stdout": out,
        "stderr": err,
        "the Solr nodes' log": running.log.read_text(errors="replace"),
        "the launcher's command line": cmdline,
        "the run state": (running.log.parent / "state.json").read_text(),
        "the nodes' properties and system info": "\n".join(answers),
    }
    assert "--tls-dir" in cmdline
    for where, text in texts.items():
        assert password not in text, f"the key store password appears in {where}"
