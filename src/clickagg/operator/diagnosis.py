"""What a failed pass means for the person who applied the Aggregation, and what to do.

A 404 from the API server, a 403, or a Solr that does not answer are symptoms; the causes
a user can fix are a peer operator that is not installed, RBAC that does not grant a
child, or a SolrCloud that does not exist. Each becomes a condition reason and a message
saying what is missing and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass

from clickagg import errors
from clickagg.domain import model
from clickagg.operator import children, kube

SOLR_CLOUD = children.Kind("SolrCloud", "solrclouds", group="solr.apache.org", version="v1beta1")
_KNOWN = {kind.resource: kind for kind in (*children.KINDS, SOLR_CLOUD)}
FORBIDDEN = 403

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


def of_api_error(exc: errors.KubeError) -> Diagnosis:
    """What a failed call about a child (or a SolrCloud) says about the cluster."""
    kind = _KNOWN.get(exc.resource)
    if kind is not None and isinstance(exc, errors.KindNotServed):
        reason, remedy = _INSTALLERS[kind.group]
        return Diagnosis(
            reason,
            f"the {kind.kind} CRD ({kind.api_version}) is not installed: {remedy}; "
            "the operator retries by itself",
        )
    if exc.resource and exc.status == FORBIDDEN:
        return Diagnosis(
            "Forbidden",
            f"RBAC forbids the operator to {exc.verb} {exc.resource} in namespace "
            f"{exc.namespace} ({exc.answer}): add the namespace to the chart's "
            "operator.namespaces, or grant the operator's ServiceAccount the chart's operator "
            "Role there",
        )
    return Diagnosis("KubernetesApiError", str(exc))


def of_solr_error(aggregation: model.Aggregation, exc: errors.SolrError) -> Diagnosis:
    """An unreachable Solr behind a solrCloudRef is first of all a SolrCloud to look for."""
    if isinstance(exc, errors.SolrAuthError):
        return Diagnosis("SolrForbidden" if exc.status == FORBIDDEN else "SolrAuthFailed", str(exc))
    if isinstance(exc, errors.SolrTlsError):
        return Diagnosis("SolrTlsFailed", str(exc))
    unreachable = isinstance(exc, errors.SolrUnreachable)
    found = Diagnosis("SolrUnreachable" if unreachable else "SolrError", str(exc))
    ref = aggregation.spec.solr.solr_cloud_ref
    if not unreachable or ref is None:
        return found
    namespace = ref.namespace or aggregation.namespace
    try:
        if kube.exists(SOLR_CLOUD, namespace, ref.name):
            return found
    except errors.KindNotServed as lookup:
        return of_api_error(lookup)  # the Solr Operator is missing
    except errors.KubeError:
        return found  # forbidden or failing: Solr's own account is the better one
    return Diagnosis(
        "SolrCloudNotFound",
        f"SolrCloud {ref.name} does not exist in namespace {namespace} (spec.solr.solrCloudRef): "
        "create it with the Solr Operator, or correct the reference",
    )
