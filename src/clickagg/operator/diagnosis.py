"""What a failed pass means for the person who applied the Aggregation, and what to do.

A 404 from the API server, a 403, or a Solr that does not answer are symptoms; the causes
a user can fix are a peer operator that is not installed, RBAC that does not grant a
child, or a SolrCloud that does not exist. Each becomes a condition reason and a message
saying what is missing and how to fix it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import requests

from clickagg import errors
from clickagg.domain import model
from clickagg.operator import children, kube

SOLR_CLOUD = children.Kind("SolrCloud", "solrclouds", group="solr.apache.org", version="v1beta1")

# Who installs the CRDs of each group the operator uses, and how.
_INSTALLERS = {
    children.SPARK_GROUP: (
        "SparkOperatorMissing",
        "install the Kubeflow Spark Operator (its Helm chart installs the CRDs)",
    ),
    SOLR_CLOUD.group: (
        "SolrOperatorMissing",
        "install the Apache Solr Operator, or point spec.solr.url at a Solr",
    ),
}


@dataclass(frozen=True)
class Diagnosis:
    """A condition reason (also the event's) and a message a user can act on."""

    reason: str
    message: str


def of_api_error(exc: kube.ApiException) -> Diagnosis:
    """What a failed call about a child (or a SolrCloud) says about the cluster."""
    if not isinstance(exc, kube.CallFailed):
        return Diagnosis("KubernetesApiError", kube.describe(exc))
    kind = exc.kind
    if kube.kind_not_served(exc):
        reason, remedy = _INSTALLERS.get(kind.group, ("CrdMissing", "install its CRD"))
        return Diagnosis(
            reason,
            f"the {kind.kind} CRD ({kind.api_version}) is not installed: {remedy}; "
            "the operator retries by itself",
        )
    if exc.status == 403:
        return Diagnosis(
            "Forbidden",
            f"RBAC forbids the operator to {exc.verb} {kind.plural}.{kind.group} in namespace "
            f"{exc.namespace} ({_server_message(exc)}): add the namespace to the chart's "
            "operator.namespaces, or grant the operator's ServiceAccount the chart's operator "
            "Role there",
        )
    return Diagnosis("KubernetesApiError", kube.describe(exc))


def of_solr_error(aggregation: model.Aggregation, exc: errors.SolrError) -> Diagnosis:
    """An unreachable Solr behind a solrCloudRef is first of all a SolrCloud to look for."""
    unreachable = isinstance(exc.__cause__, requests.ConnectionError | requests.Timeout)
    found = Diagnosis("SolrUnreachable" if unreachable else "SolrError", str(exc))
    ref = aggregation.spec.solr.solr_cloud_ref
    if not unreachable or ref is None:
        return found
    namespace = ref.namespace or aggregation.namespace
    try:
        if kube.exists(SOLR_CLOUD, namespace, ref.name):
            return found
    except kube.ApiException as lookup:
        # Not served: the Solr Operator is missing. Forbidden or failing: Solr's own account.
        return of_api_error(lookup) if kube.kind_not_served(lookup) else found
    return Diagnosis(
        "SolrCloudNotFound",
        f"SolrCloud {ref.name} does not exist in namespace {namespace} (spec.solr.solrCloudRef): "
        "create it with the Solr Operator, or correct the reference",
    )


def _server_message(exc: kube.ApiException) -> str:
    try:
        return str(json.loads(str(exc.body))["message"])
    except (ValueError, KeyError, TypeError):
        return f"{exc.status} {exc.reason}"
