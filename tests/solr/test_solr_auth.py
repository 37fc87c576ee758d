"""A SolrCloud with BasicAuth and rule-based authorization, and the store client against it.

Its own 2-node cluster (fixtures.solr.auth_solr: started for this module, stopped after it),
next to the session's plain one: anonymous, wrong-password and wrong-role requests are refused
and reported as `SolrAuthError` naming the user and the missing permission; the jobs' user
writes, the query user reads; no password appears in any log.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import pytest

from clickagg import errors
from clickagg.local import process, solr_security
from clickagg.local import solr as local_solr
from clickagg.store import client as store_client
from clickagg.store import collections as solr_collections
from clickagg.store import credentials
from fixtures import solr as fixtures_solr

pytestmark = pytest.mark.solr

INSTANCE = fixtures_solr.AUTH_INSTANCE


@pytest.fixture(autouse=True)
def no_environment_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (credentials.USERNAME_ENV, credentials.PASSWORD_ENV, credentials.PASSWORD_FILE_ENV):
        monkeypatch.delenv(name, raising=False)


def pair(role: str) -> tuple[str, str]:
    return local_solr.credentials(role, INSTANCE)


@pytest.fixture(scope="module")
def auth_collection(auth_solr: local_solr.SolrEndpoints) -> str:
    """A 2-shard collection, one shard per node, created by the operator's user."""
    name = f"auth_{uuid.uuid4().hex[:8]}"
    with store_client.SolrClient(auth_solr.base_url, auth=pair(solr_security.OPERATOR)) as admin:
        admin.create_collection(name, solr_collections.CONFIGSET_NAME, 2, 1)
    return name


def refused(call: object) -> errors.SolrAuthError:
    assert callable(call)
    with pytest.raises(errors.SolrAuthError) as caught:
        call()
    return caught.value


def test_passwords_are_kept_owner_only(auth_solr: local_solr.SolrEndpoints) -> None:
    assert auth_solr.auth
    assert local_solr.credentials_file(INSTANCE).stat().st_mode & 0o077 == 0
    user, _ = pair(solr_security.QUERY)
    assert user == "clickagg-query"


def test_an_anonymous_request_is_refused_with_401(
    auth_solr: local_solr.SolrEndpoints, auth_collection: str
) -> None:
    with store_client.SolrClient(auth_solr.base_url) as anonymous:
        error = refused(lambda: anonymous.query(auth_collection, {"q": "*:*"}))
        assert not anonymous.ping()
    assert (error.status, error.user, error.permission) == (401, None, "read")
    assert "no credentials were sent" in str(error)
    assert credentials.USERNAME_ENV in str(error)


def test_a_wrong_password_is_refused_with_401(
    auth_solr: local_solr.SolrEndpoints, auth_collection: str
) -> None:
    user, _ = pair(solr_security.JOBS)
    wrong = "not-the-password"
    with store_client.SolrClient(auth_solr.base_url, auth=(user, wrong)) as client:
        error = refused(lambda: client.add(auth_collection, [{"id": "x"}]))
    assert (error.status, error.user) == (401, "clickagg-jobs")
    assert "refused user 'clickagg-jobs'" in str(error)
    assert "wrong user name or password" in str(error)
    assert wrong not in str(error)


def test_the_query_user_may_read_but_not_update(
    auth_solr: local_solr.SolrEndpoints, auth_collection: str
) -> None:
    with store_client.SolrClient(auth_solr.base_url, auth=pair(solr_security.QUERY)) as query:
        query.query(auth_collection, {"q": "*:*"})
        error = refused(lambda: query.add(auth_collection, [{"id": "q1"}]))
    assert (error.status, error.user, error.permission) == (403, "clickagg-query", "update")
    assert f"collection '{auth_collection}'" in str(error)
    assert "lacks the permission 'update'" in str(error)


def test_the_jobs_user_writes_but_may_not_create_collections(
    auth_solr: local_solr.SolrEndpoints, auth_collection: str
) -> None:
    docs = [{"id": f"doc-{i}"} for i in range(20)]
    with store_client.SolrClient(auth_solr.base_url, auth=pair(solr_security.JOBS)) as jobs:
        jobs.add(auth_collection, docs)
        jobs.commit(auth_collection)
        # The write went to both shards' leaders on both nodes: PKI between the nodes works.
        error = refused(
            lambda: jobs.create_collection("not_allowed", solr_collections.CONFIGSET_NAME, 1, 1)
        )
    assert (error.status, error.permission) == (403, "collection-admin-edit")
    with store_client.SolrClient(auth_solr.base_url, auth=pair(solr_security.QUERY)) as query:
        # /export through a streaming expression fans out to both nodes as the query user.
        exported = list(query.export(auth_collection, "id:doc-*", ["id"], "id asc"))
    assert sorted(doc["id"] for doc in exported) == sorted(doc["id"] for doc in docs)


def test_a_client_takes_its_credentials_from_the_environment(
    auth_solr: local_solr.SolrEndpoints, auth_collection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # User and password file, as a Kubernetes Secret mounted as files gives them.
    for name, value in local_solr.credentials_env(solr_security.QUERY, INSTANCE).items():
        monkeypatch.setenv(name, value)
    with store_client.SolrClient(auth_solr.base_url) as client:
        assert client.user == "clickagg-query"
        assert client.ping()
        error = refused(lambda: client.delete_by_query(auth_collection, "*:*"))
    assert error.permission == "update"


def test_no_password_appears_in_any_log(
    auth_solr: local_solr.SolrEndpoints,
    auth_collection: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    passwords = [pair(role)[1] for role in solr_security.ROLES]
    messages = []
    for role in solr_security.ROLES:
        with store_client.SolrClient(auth_solr.base_url, auth=pair(role)) as client:
            client.query(auth_collection, {"q": "*:*"})
            calls: list[Callable[[], object]] = [
                lambda: client.add(auth_collection, [{"id": "log-doc"}]),
                lambda: client.create_collection("never", solr_collections.CONFIGSET_NAME, 1, 1),
            ]
            for call in calls:
                try:
                    call()
                except errors.SolrAuthError as exc:
                    logging.getLogger(__name__).warning("refused: %s", exc)
                    messages.append(str(exc))
                    messages.append(repr(exc))
    assert messages, "the query and jobs users must have been refused something"
    out, err = capfd.readouterr()
    launcher_log = process.status(INSTANCE)
    assert launcher_log is not None
    logs = {
        "captured log records": caplog.text,
        "stdout": out,
        "stderr": err,
        "errors": "\n".join(messages),
        "the Solr nodes' log": launcher_log.log.read_text(errors="replace"),
        "security.json": (
            local_solr.credentials_file(INSTANCE).parent / "security.json"
        ).read_text(),
    }
    for where, text in logs.items():
        for password in passwords:
            assert password not in text, f"a password appears in {where}"
