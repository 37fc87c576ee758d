"""The Aggregation spec: the one source of truth for the CRD schema, validation and docs.

Field descriptions here become the CRD's `kubectl explain` text and the spec reference
in docs/, so they are written for the person declaring an Aggregation.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic
from pydantic import alias_generators

from clickagg.domain import durations

API_GROUP = "clickagg.io"
API_VERSION = "v1alpha1"
KIND = "Aggregation"
PLURAL = "aggregations"
SHORT_NAMES = ("agg",)


def _duration(text: str) -> str:
    durations.parse(text)
    return text


def _retention(text: str) -> str:
    durations.parse_retention(text)
    return text


_DURATION_SCHEMA = {"pattern": durations.PATTERN}
_RETENTION_SCHEMA = {"pattern": r"^(forever|" + durations.PATTERN.strip("^$") + r")$"}
DurationText = Annotated[
    str,
    pydantic.AfterValidator(_duration),
    pydantic.WithJsonSchema({"type": "string", **_DURATION_SCHEMA}),
]
RetentionText = Annotated[
    str,
    pydantic.AfterValidator(_retention),
    pydantic.WithJsonSchema({"type": "string", **_RETENTION_SCHEMA}),
]
Quantity = Annotated[str, pydantic.Field(pattern=r"^[0-9]+(\.[0-9]+)?([kmgtKMGT]i?|[kmgt])?$")]
DimensionName = Annotated[str, pydantic.Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class WireModel(pydantic.BaseModel):
    """camelCase on the wire (Kubernetes style), snake_case in Python; unknown fields fail."""

    model_config = pydantic.ConfigDict(
        extra="forbid",
        populate_by_name=True,
        alias_generator=alias_generators.to_camel,
        frozen=True,
    )


def _describe(text: str, **kwargs: Any) -> Any:
    """A field whose description is required, as the CRD wants one on every field."""
    return pydantic.Field(description=text, **kwargs)


class SecretKeys(WireModel):
    """A Secret holding a user name and a password."""

    name: str = _describe("Name of the Secret, in the Aggregation's namespace.", min_length=1)
    username_key: str = _describe("Key of the user name in the Secret.", default="username")
    password_key: str = _describe("Key of the password in the Secret.", default="password")


class FilesSource(WireModel):
    """A landing directory that receives files of JSON lines, one event a line."""

    path: str = _describe(
        "Directory (local path or Hadoop URI such as s3a://bucket/landing) watched for new files.",
        min_length=1,
    )
    max_files_per_trigger: int = _describe(
        "At most this many new files are read per micro-batch.", default=1000, ge=1
    )


class CaSecret(WireModel):
    """A Secret key holding PEM CA certificates."""

    name: str = _describe("Name of the Secret, in the Aggregation's namespace.", min_length=1)
    key: str = _describe("Key of the PEM CA bundle in the Secret.", default="ca.crt", min_length=1)


class KafkaSecurity(WireModel):
    """How the jobs authenticate to Kafka."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = _describe(
        "Kafka security.protocol.", default="PLAINTEXT"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = _describe(
        "SASL mechanism, when the protocol uses SASL.", default=None
    )
    credentials_secret: SecretKeys | None = _describe(
        "Secret with the SASL user name and password.", default=None
    )
    ca_secret: CaSecret | None = _describe(
        "With SSL or SASL_SSL: Secret with the CA certificates (PEM) that signed the brokers' "
        "certificates; the stream's driver and executors get it mounted read-only. Without "
        "it, the JVM's default trust store.",
        default=None,
    )


class KafkaSource(WireModel):
    """A Kafka topic of JSON events, one event a message."""

    bootstrap_servers: str = _describe(
        "Comma-separated host:port list of Kafka brokers.", min_length=1
    )
    topic: str = _describe("Topic to read events from.", min_length=1)
    starting_offsets: Literal["earliest", "latest"] = _describe(
        "Where a job without a checkpoint starts reading.", default="earliest"
    )
    security: KafkaSecurity = _describe(
        "Authentication and encryption.", default_factory=KafkaSecurity
    )


class Source(WireModel):
    """Where the events come from; `type` says which of `files` and `kafka` is used."""

    type: Literal["files", "kafka"] = _describe(
        "Kind of source: files (a landing directory) or kafka.", default="files"
    )
    files: FilesSource | None = _describe(
        "The landing directory, when type is files.", default=None
    )
    kafka: KafkaSource | None = _describe("The Kafka topic, when type is kafka.", default=None)


class SolrCloudReference(WireModel):
    """A SolrCloud managed by the Solr Operator."""

    name: str = _describe("Name of the SolrCloud resource.", min_length=1)
    namespace: str | None = _describe(
        "Namespace of the SolrCloud; the Aggregation's namespace when empty.", default=None
    )


class SolrTls(WireModel):
    """How clients verify a Solr served over https."""

    ca_secret: CaSecret = _describe(
        "Secret with the CA certificates (PEM) that signed Solr's certificates; the operator "
        "verifies Solr with it, and the job pods get it mounted read-only with "
        "$CLICKAGG_SOLR_CA_FILE naming it."
    )


class SolrTarget(WireModel):
    """The SolrCloud that keeps the aggregates; name exactly one of solrCloudRef and url."""

    solr_cloud_ref: SolrCloudReference | None = _describe(
        "A SolrCloud resource; the job pods are placed next to its pods.", default=None
    )
    url: str | None = _describe(
        "Base URL of any Solr node, e.g. http://solr:8983/solr, for a Solr not run by the "
        "Solr Operator.",
        default=None,
    )
    collection_prefix: str | None = _describe(
        "Prefix of the per-level collection names (<prefix>-<level>); the Aggregation's name "
        "when empty.",
        default=None,
        pattern=r"^[a-z0-9]([a-z0-9_-]{0,38}[a-z0-9])?$",
    )
    shards: int = _describe("Shards per level collection.", default=2, ge=1, le=64)
    replication_factor: int = _describe("Replicas of each shard.", default=2, ge=1, le=5)
    basic_auth_secret: SecretKeys | None = _describe(
        "Secret with the jobs' Solr basic-auth credentials, when Solr requires them: read "
        "and update on the level collections suffice (a job waits for the operator to create "
        "them). The operator administers collections as its own user (the chart's "
        "operator.solrCredentialsSecret) and uses this one only when it has none.",
        default=None,
    )
    tls: SolrTls | None = _describe(
        "Trust for a Solr served over https (an https url or SolrCloud); without it the "
        "system's CAs.",
        default=None,
    )


class DimensionSpec(WireModel):
    """A dimension KPIs are broken down by."""

    name: DimensionName = _describe(
        "Name of the dimension as cuboids and queries use it (lower snake case)."
    )
    field: str | None = _describe(
        "Event field (or derived field) that gives its value; the dimension's name when empty.",
        default=None,
    )
    max_cardinality: int = _describe(
        "Distinct values a bucket is expected to hold: the plan's size estimate, checked "
        "against spec.limits.maxDocumentsPerDay, assumes it. The stream stores every value "
        "it sees; it folds none into __other__.",
        default=1000,
        ge=1,
        le=1_000_000,
    )


class CuboidSpec(WireModel):
    """A combination of dimensions to materialise (smart aggregation)."""

    dimensions: list[DimensionName] = _describe(
        "Dimensions grouped together; an empty list is the totals.", default_factory=list
    )


class LevelSpec(WireModel):
    """A time level: buckets of one granularity, kept for one retention."""

    granularity: DurationText = _describe(
        "Bucket size, e.g. 15m, 1h, 1d, 1w, 1mo (ISO 8601 such as PT15M also works)."
    )
    retention: RetentionText = _describe(
        "How long buckets of this level are kept, e.g. 30d, 4mo, 2y, or forever. In the short "
        "form m is minutes and mo is months."
    )


class LatenessSpec(WireModel):
    """How late events may arrive."""

    watermark: DurationText = _describe(
        "Streaming keeps state this long behind the newest event time; later events are "
        "still archived and count after the next replay or rollup.",
        default="10m",
    )
    allowed_lateness: DurationText = _describe(
        "Events older than this behind the newest event time go to the dead letters.",
        default="1d",
    )


class RawArchiveSpec(WireModel):
    """The Parquet archive of every valid event, for replays."""

    uri: str | None = _describe(
        "Directory or Hadoop URI of the archive; the jobs' default data path when empty.",
        default=None,
    )
    retention: RetentionText = _describe(
        "How long raw events are kept; forever by default.", default="forever"
    )


class StorageSpec(WireModel):
    """Where the jobs keep their checkpoints and (without rawArchive.uri) the raw archive.

    Neither field: a directory inside the driver's and executors' containers, which does not
    survive the pod (a restarted stream starts over). Name at most one of the two."""

    persistent_volume_claim: str | None = _describe(
        "A PersistentVolumeClaim (ReadWriteMany) in the Aggregation's namespace, mounted into "
        "the driver and every executor at the operator's data root; the data lives below it "
        "in <namespace>/<name>.",
        default=None,
        min_length=1,
    )
    uri: str | None = _describe(
        "An object-store URI that is this Aggregation's data root: s3a://bucket/path, "
        "gs://bucket/path or abfs(s)://container@account.dfs.core.windows.net/path. The jobs "
        "get the store's Hadoop connector.",
        default=None,
        pattern=r"^(s3a|gs|abfss?)://[^/]+(/.*)?$",
    )
    credentials_secret: str | None = _describe(
        "With uri: a Secret whose keys the connector reads from the environment of driver and "
        "executors, named as the variables: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (s3a); "
        "GCS_CLIENT_EMAIL, GCS_PRIVATE_KEY_ID and GCS_PRIVATE_KEY (gs); AZURE_STORAGE_KEY (abfs). "
        "Without it the pods' own identity (e.g. workload identity) is used.",
        default=None,
        min_length=1,
    )


class ResourcesSpec(WireModel):
    """Cores and memory of one Spark process."""

    cores: int = _describe("CPU cores.", default=1, ge=1, le=64)
    memory: Quantity = _describe("Heap memory, e.g. 2g or 512m.", default="2g")


class ExecutorSpec(ResourcesSpec):
    """Cores, memory and count of the Spark executors."""

    instances: int = _describe(
        "Number of executors (where autoscaling starts, with spark.autoscale).",
        default=2,
        ge=1,
        le=1000,
    )
    min_instances: int | None = _describe(
        "Fewest executors autoscaling may choose (spark.autoscale only); 1 when left out.",
        default=None,
        ge=1,
        le=1000,
    )
    max_instances: int | None = _describe(
        "Most executors autoscaling may choose; required with spark.autoscale.",
        default=None,
        ge=1,
        le=1000,
    )


class SparkSpec(WireModel):
    """How the Spark jobs run."""

    image: str = _describe("Container image of the jobs.", default="clickagg/jobs:0.1.0")
    spark_version: str = _describe("Spark version of the image.", default="4.3.0")
    driver: ResourcesSpec = _describe("Driver resources.", default_factory=ResourcesSpec)
    executor: ExecutorSpec = _describe("Executor resources.", default_factory=ExecutorSpec)
    trigger_interval: DurationText = _describe(
        "Micro-batch interval of the streaming job; new events show in Solr about this fast.",
        default="10s",
    )
    autoscale: bool = _describe(
        "Let the operator set the stream's executor count from its measured input and "
        "processing rates, within executor.minInstances and executor.maxInstances (each "
        "change restarts the stream from its checkpoint). Without it the operator only "
        "advises, in status.advisedExecutors and a Warning event.",
        default=False,
    )


class LimitsSpec(WireModel):
    """Guards against plans that would flood Solr."""

    max_documents_per_day: int = _describe(
        "Upper bound of aggregate documents written per day over all levels and cuboids, "
        "as the plan estimates it from the dimension cardinalities.",
        default=50_000_000,
        ge=1,
    )


class AggregationSpec(WireModel):
    """What to aggregate, how finely, for how long, and where to keep it."""

    source: Source = _describe("Where the events come from.")
    solr: SolrTarget = _describe("The SolrCloud that keeps the aggregates.")
    dimensions: list[DimensionSpec] = _describe(
        "Dimensions KPIs are broken down by.", default_factory=list
    )
    cuboids: list[CuboidSpec] | None = _describe(
        "Dimension combinations to materialise; the totals plus each single dimension when empty.",
        default=None,
    )
    kpis: list[str] | None = _describe(
        "KPIs to compute, from the catalogue in docs/kpis.md; all of them when empty.",
        default=None,
    )
    levels: list[LevelSpec] = _describe(
        "Time levels, finest first. The finest is streamed; each coarser one is rolled up "
        "from the one before it.",
        min_length=1,
    )
    session_timeout: DurationText = _describe(
        "A visit ends after this long without an event from its visitor.", default="30m"
    )
    lateness: LatenessSpec = _describe("How late events may arrive.", default_factory=LatenessSpec)
    raw_archive: RawArchiveSpec = _describe(
        "The Parquet archive of every valid event.", default_factory=RawArchiveSpec
    )
    storage: StorageSpec = _describe(
        "Where checkpoints and the archive live in a cluster: a PersistentVolumeClaim or an "
        "object store; by default inside the pods, lost with them.",
        default_factory=StorageSpec,
    )
    spark: SparkSpec = _describe("How the Spark jobs run.", default_factory=SparkSpec)
    limits: LimitsSpec = _describe("Guards against oversized plans.", default_factory=LimitsSpec)
    deletion_policy: Literal["Retain", "Delete"] = _describe(
        "Retain keeps the Solr collections when the Aggregation is deleted; Delete drops them.",
        default="Retain",
    )
