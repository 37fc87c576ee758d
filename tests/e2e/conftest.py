"""The e2e tier runs against a SolrCloud with BasicAuth, rule-based authorization and TLS on.

`solr` here is the session's secured cluster (fixtures.solr.secure_solr), and each part
gets its role's credentials as a deployment gives them, in its environment (user, password
file, CA bundle), never as arguments:

- the jobs (stream, settle, rollup, retention, in this process or a child driver) find the
  jobs' user in the environment, set for each module;
- the tests' own set-up and reads (`solr_client`, creating and deleting collections, as the
  operator does) pass the operator's user explicitly;
- the KPI service gets the query user's environment (test_dashboard, test_secured_solr), and
  the operator in test_k8s_path reads its Secret through the API, as in a cluster.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from clickagg.local import solr as local_solr
from clickagg.local import solr_security
from clickagg.store import client as store_client
from fixtures import solr as fixtures_solr


@pytest.fixture(scope="session")
def solr(secure_solr: local_solr.SolrEndpoints) -> local_solr.SolrEndpoints:
    return secure_solr


@pytest.fixture(scope="session")
def solr_client(secure_solr: local_solr.SolrEndpoints) -> Iterator[store_client.SolrClient]:
    """The operator's user: it may create and delete collections, and read everything."""
    with fixtures_solr.client_as(secure_solr.base_url, solr_security.OPERATOR) as client:
        yield client


@pytest.fixture(scope="module", autouse=True)
def jobs_environment(secure_solr: local_solr.SolrEndpoints) -> Iterator[dict[str, str]]:
    """The jobs' user, password file and CA bundle in this process's environment (children
    inherit it) while a module runs; what it held before comes back after."""
    with pytest.MonkeyPatch.context() as env:
        for name in fixtures_solr.SOLR_ENV:
            env.delenv(name, raising=False)
        found = fixtures_solr.role_env(solr_security.JOBS)
        for name, value in found.items():
            env.setenv(name, value)
        yield found
