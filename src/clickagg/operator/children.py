"""The manifests an Aggregation owns, built as typed dicts from the validated model.

Pure on purpose: the same inputs give the same bytes, so server-side apply of the result
is idempotent (a restarted operator changes nothing) and every field can be unit-tested.
The real API server, with the Spark Operator's real CRDs, judges the result in the tests.

Children of Aggregation `<name>`:
- SparkApplication `<name>-stream`: the streaming job that keeps the finest level live.
- ScheduledSparkApplication `<name>-rollup-<level>` per coarser level. Retention is the
  rollup job's job too: `rollup.py --level L` builds L from the level before it, then
  deletes L's buckets past L's retention; the first rollup (the one reading the streamed
  finest level) also applies the finest level's retention, after it has read those buckets.
  An Aggregation with only one level gets `<name>-rollup-<finest>`, which has nothing to
  roll up and only applies retention (none when that level is kept forever).

With `spec.solr.basicAuthSecret`, driver and executors get the Solr user and password as
environment variables that Kubernetes fills from that Secret (`valueFrom.secretKeyRef`): the
manifests name the Secret and its keys, never a value.

A Kafka source's stream gets Spark's Kafka connector, baked into the jobs image under
`/opt/clickagg/jars/kafka/` (jobs/Dockerfile), in `deps.jars`; with
`spec.source.kafka.security.credentialsSecret` its driver and executors get the SASL user
and password from that Secret as `store.credentials` reads them.

Storage (`spec.storage`): a PersistentVolumeClaim becomes a volume mounted into driver and
executors at the data root, so checkpoints and the archive outlive the pods; an object-store
URI becomes the data root itself, with its Hadoop connector in `deps.packages`, its settings
in `sparkConf` and, with a credentials Secret, its keys as environment variables. Without
either the data root is a directory inside the pods and is lost with them.

A spec change changes `--spec-json`, so the Spark Operator kills and resubmits the stream,
which resumes from its checkpoints under `--data-root`; edited rollups apply from their
next run.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, NotRequired, Required, TypedDict, TypeVar

from clickagg.domain import capacity, durations, model, spec
from clickagg.store import credentials

SPARK_GROUP = "sparkoperator.k8s.io"
SPARK_VERSION = "v1beta2"
STREAM_FILE = "local:///opt/clickagg/jobs/stream.py"
ROLLUP_FILE = "local:///opt/clickagg/jobs/rollup.py"
#: The JVM sessionizer, built into the jobs image (jobs/Dockerfile); the stream runs it, and
#: the rollup job too, since it settles the finest level first.
SESSIONIZER_JAR = "local:///opt/clickagg/jars/clickagg-sessionizer.jar"
#: Spark's Kafka source and its dependencies, baked into the jobs image with the versions
#: stripped from the file names (jobs/Dockerfile: dependency:copy-dependencies of
#: src/clickagg/local/spark_kafka/pom.xml at the image's Spark version).
KAFKA_CONNECTOR_JARS = tuple(
    f"local:///opt/clickagg/jars/kafka/{name}.jar"
    for name in (
        "spark-sql-kafka-0-10_2.13",
        "spark-token-provider-kafka-0-10_2.13",
        "kafka-clients",
        "commons-pool2",
    )
)
#: The Hadoop client of the jobs image's Spark (4.3: 3.5.0); connectors must match it.
HADOOP_VERSION = "3.5.0"
DATA_VOLUME = "clickagg-data"
#: Ivy's cache for deps.packages: the image's user 185 has no writable home.
IVY_DIR = "/tmp/.ivy2"  # noqa: S108 (inside the pod, owned by its one user)

MANAGER = "clickagg-operator"
AGGREGATION_LABEL = "clickagg.io/aggregation"
LEVEL_LABEL = "clickagg.io/level"
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
STREAM = "stream"
ROLLUP = "rollup"

# The Solr Operator labels every Solr pod with these (see its SolrCloud controller).
SOLR_CLOUD_POD_LABEL = "solr-cloud"
SOLR_TECHNOLOGY_LABEL = "technology"
SOLR_TECHNOLOGY = "solr-cloud"
# Where the job pods find spec.solr.tls's CA bundle ($CLICKAGG_SOLR_CA_FILE).
SOLR_CA_VOLUME = "solr-ca"
SOLR_CA_DIR = "/etc/clickagg/solr-ca"
SOLR_CA_FILE = "ca.crt"
KAFKA_CA_VOLUME = "kafka-ca"
KAFKA_CA_DIR = "/etc/clickagg/kafka-ca"
HOSTNAME_TOPOLOGY = "kubernetes.io/hostname"

# A streaming job is restarted for ever; these space out restarts after a crash or a
# failed submission so a broken image does not hammer the API server.
STREAM_RETRY_SECONDS = 30
STREAM_SUBMISSION_RETRY_SECONDS = 60
ROLLUP_RETRIES = 3
ROLLUP_RETRY_SECONDS = 120
RUN_HISTORY = 3


# --------------------------------------------------------------------------- manifests
# The shapes the Spark Operator's CRDs define (the parts we set), keyed as on the wire.


class OwnerReference(TypedDict):
    apiVersion: str
    kind: str
    name: str
    uid: str
    controller: bool
    blockOwnerDeletion: bool


class ObjectMeta(TypedDict):
    name: str
    namespace: str
    labels: dict[str, str]
    ownerReferences: list[OwnerReference]


class LabelSelector(TypedDict):
    matchLabels: dict[str, str]


class PodAffinityTerm(TypedDict):
    labelSelector: LabelSelector
    namespaces: list[str]
    topologyKey: str


class WeightedPodAffinityTerm(TypedDict):
    weight: int
    podAffinityTerm: PodAffinityTerm


class PodAffinity(TypedDict):
    preferredDuringSchedulingIgnoredDuringExecution: list[WeightedPodAffinityTerm]


class Affinity(TypedDict):
    podAffinity: PodAffinity


class SecretKeySelector(TypedDict):
    name: str
    key: str


class EnvVarSource(TypedDict):
    secretKeyRef: SecretKeySelector


class EnvVar(TypedDict, total=False):
    """A container environment variable: filled from a Secret (a secret value never appears)
    or a plain value (a path)."""

    name: Required[str]
    valueFrom: EnvVarSource
    value: str


class SecretVolumeItem(TypedDict):
    key: str
    path: str


class SecretVolumeSource(TypedDict):
    secretName: str
    items: list[SecretVolumeItem]


class PersistentVolumeClaimSource(TypedDict):
    claimName: str


class Volume(TypedDict, total=False):
    name: Required[str]
    secret: SecretVolumeSource  # spec.solr.tls's CA
    persistentVolumeClaim: PersistentVolumeClaimSource  # spec.storage's claim


class VolumeMount(TypedDict, total=False):
    name: Required[str]
    mountPath: Required[str]
    readOnly: bool


class SparkPod(TypedDict, total=False):
    """The driver's or the executors' settings (instances: executors only)."""

    cores: int
    memory: str
    instances: int
    serviceAccount: str
    labels: dict[str, str]
    affinity: Affinity
    env: list[EnvVar]
    volumeMounts: list[VolumeMount]


class RestartPolicy(TypedDict, total=False):
    type: str
    onFailureRetries: int
    onFailureRetryInterval: int
    onSubmissionFailureRetries: int
    onSubmissionFailureRetryInterval: int


class Deps(TypedDict):
    jars: list[str]
    packages: NotRequired[list[str]]


class ApplicationSpec(TypedDict):
    type: str
    mode: str
    image: str
    imagePullPolicy: str
    sparkVersion: str
    mainApplicationFile: str
    arguments: list[str]
    sparkConf: dict[str, str]
    restartPolicy: RestartPolicy
    driver: SparkPod
    executor: SparkPod
    deps: Deps  # the JVM sessionizer; Kafka's connector; an object store's
    volumes: NotRequired[list[Volume]]  # spec.storage's claim, spec.solr.tls's CA Secret


class ScheduledApplicationSpec(TypedDict):
    schedule: str
    timeZone: str
    concurrencyPolicy: str
    successfulRunHistoryLimit: int
    failedRunHistoryLimit: int
    template: ApplicationSpec


SpecT = TypeVar("SpecT", ApplicationSpec, ScheduledApplicationSpec)


class Manifest(TypedDict, Generic[SpecT]):
    """A SparkApplication (spec: ApplicationSpec) or ScheduledSparkApplication (spec:
    ScheduledApplicationSpec), ready for server-side apply."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: SpecT


AnyManifest = Manifest[ApplicationSpec] | Manifest[ScheduledApplicationSpec]


@dataclass(frozen=True)
class Kind:
    """A kind of custom object (the Spark Operator's by default), as the custom-objects API
    addresses it."""

    kind: str
    plural: str
    group: str = SPARK_GROUP
    version: str = SPARK_VERSION

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def resource(self) -> str:
        """As RBAC and kubectl name it: plural.group."""
        return f"{self.plural}.{self.group}"


SPARK_APPLICATION = Kind("SparkApplication", "sparkapplications")
SCHEDULED_SPARK_APPLICATION = Kind("ScheduledSparkApplication", "scheduledsparkapplications")
KINDS = (SPARK_APPLICATION, SCHEDULED_SPARK_APPLICATION)


@dataclass(frozen=True)
class Owner:
    """The Aggregation object the children point back to (ownerReferences need its uid)."""

    name: str
    namespace: str
    uid: str
    api_version: str = f"{spec.API_GROUP}/{spec.API_VERSION}"
    kind: str = spec.KIND


@dataclass(frozen=True)
class JobSettings:
    """What the cluster decides rather than the spec: who the pods run as, where data lives."""

    service_account: str
    default_data_root: str  # jobs of an Aggregation without rawArchive.uri keep data below
    #: The claim mounted at the data root for an Aggregation whose spec.storage names neither
    #: a claim nor a uri (the chart's sparkJobs.dataClaim); None: inside the pods.
    default_claim: str | None = None


def stream_name(aggregation_name: str) -> str:
    return f"{aggregation_name}-{STREAM}"


def rollup_name(aggregation_name: str, level: str) -> str:
    return f"{aggregation_name}-{ROLLUP}-{level}"


def cluster_solr_url(aggregation: model.Aggregation) -> str:
    """The Solr base URL as seen from inside the cluster (what the jobs are given)."""
    target = aggregation.spec.solr
    if target.url is not None:
        return target.url.rstrip("/")
    ref = _solr_cloud_ref(aggregation)
    namespace = ref.namespace or aggregation.namespace
    # The Solr Operator's common Service for a SolrCloud, port 80 in front of every node.
    return f"http://{ref.name}-solrcloud-common.{namespace}:80/solr"


def data_claim(aggregation: model.Aggregation, settings: JobSettings) -> str | None:
    """The PersistentVolumeClaim the jobs' data root lives on: spec.storage's, or the
    operator's default when spec.storage names neither a claim nor a uri; None without."""
    storage = aggregation.spec.storage
    if storage.persistent_volume_claim is not None or storage.uri is not None:
        return storage.persistent_volume_claim
    return settings.default_claim


def data_root(aggregation: model.Aggregation, default_root: str) -> str:
    """`<default_root>/<namespace>/<name>` (on the claim spec.storage names, if any), or
    spec.storage.uri: the job's checkpoints, and its archive unless spec.rawArchive.uri
    names another place (the job reads that from the spec itself)."""
    uri = aggregation.spec.storage.uri
    if uri is not None:
        return uri.rstrip("/")
    return f"{default_root.rstrip('/')}/{aggregation.namespace}/{aggregation.name}"


@dataclass(frozen=True)
class ObjectStore:
    """What a Spark job needs for one object-store scheme: the Hadoop connector, its
    settings, and, with a credentials Secret, the settings and variables that read it."""

    packages: tuple[str, ...]
    spark_conf: Mapping[str, str]
    credential_conf: Mapping[str, str]  # {account}: the URI's storage account (abfs)
    env: tuple[str, ...]  # variables (and the Secret's keys) the credentials come in


_GCS_FS = "com.google.cloud.hadoop.fs.gcs"
_AZURE_KEY = "spark.hadoop.fs.azure.account.key.{account}.dfs.core.windows.net"
#: Hadoop's Configuration expands `${env.NAME}` when a setting is read, so a value never
#: appears in sparkConf: only the name of the variable Kubernetes fills from the Secret.
OBJECT_STORES: Mapping[str, ObjectStore] = {
    "s3a": ObjectStore(
        packages=(f"org.apache.hadoop:hadoop-aws:{HADOOP_VERSION}",),
        spark_conf={},
        credential_conf={
            "spark.hadoop.fs.s3a.aws.credentials.provider": (
                "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider"
            )
        },
        env=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    ),
    "gs": ObjectStore(
        packages=("com.google.cloud.bigdataoss:gcs-connector:hadoop3-2.2.26",),
        spark_conf={
            "spark.hadoop.fs.gs.impl": f"{_GCS_FS}.GoogleHadoopFileSystem",
            "spark.hadoop.fs.AbstractFileSystem.gs.impl": f"{_GCS_FS}.GoogleHadoopFS",
        },
        credential_conf={
            "spark.hadoop.fs.gs.auth.service.account.enable": "true",
            "spark.hadoop.fs.gs.auth.service.account.email": "${env.GCS_CLIENT_EMAIL}",
            "spark.hadoop.fs.gs.auth.service.account.private.key.id": "${env.GCS_PRIVATE_KEY_ID}",
            "spark.hadoop.fs.gs.auth.service.account.private.key": "${env.GCS_PRIVATE_KEY}",
        },
        env=("GCS_CLIENT_EMAIL", "GCS_PRIVATE_KEY_ID", "GCS_PRIVATE_KEY"),
    ),
    "abfs": ObjectStore(
        packages=(f"org.apache.hadoop:hadoop-azure:{HADOOP_VERSION}",),
        spark_conf={},
        credential_conf={_AZURE_KEY: "${env.AZURE_STORAGE_KEY}"},
        env=("AZURE_STORAGE_KEY",),
    ),
}


def object_store(aggregation: model.Aggregation) -> ObjectStore | None:
    """The object store spec.storage.uri names (abfss is abfs over TLS), or None."""
    uri = aggregation.spec.storage.uri
    if uri is None:
        return None
    scheme = urllib.parse.urlsplit(uri).scheme
    return OBJECT_STORES["abfs" if scheme == "abfss" else scheme]


def job_deps(aggregation: model.Aggregation, component: str) -> Deps:
    """The jars and packages a job needs: the JVM sessionizer; Spark's Kafka connector for
    the stream of a Kafka source; the object store's connector."""
    jars = [SESSIONIZER_JAR]
    if component == STREAM and aggregation.spec.source.kafka is not None:
        jars += KAFKA_CONNECTOR_JARS
    deps: Deps = {"jars": jars}
    store = object_store(aggregation)
    if store is not None:
        deps["packages"] = list(store.packages)
    return deps


def storage_conf(aggregation: model.Aggregation) -> dict[str, str]:
    """The object store's sparkConf (none for a claim or the default)."""
    store = object_store(aggregation)
    if store is None:
        return {}
    conf = {"spark.jars.ivy": IVY_DIR, **store.spark_conf}
    if aggregation.spec.storage.credentials_secret is not None:
        netloc = urllib.parse.urlsplit(aggregation.spec.storage.uri or "").netloc
        account = netloc.rpartition("@")[2].split(".")[0]
        conf.update({k.format(account=account): v for k, v in store.credential_conf.items()})
    return conf


def storage_env(aggregation: model.Aggregation) -> list[EnvVar]:
    """The object store's credentials from spec.storage.credentialsSecret, by reference."""
    store, secret = object_store(aggregation), aggregation.spec.storage.credentials_secret
    if store is None or secret is None:
        return []
    return [_from_secret(name, secret, name) for name in store.env]


def kafka_credentials_env(aggregation: model.Aggregation) -> list[EnvVar]:
    """The Kafka SASL user and password from spec.source.kafka.security.credentialsSecret,
    as `store.credentials` reads them; none without that Secret."""
    kafka = aggregation.spec.source.kafka
    secret = kafka.security.credentials_secret if kafka is not None else None
    if secret is None:
        return []
    return [
        _from_secret(credentials.KAFKA_USERNAME_ENV, secret.name, secret.username_key),
        _from_secret(credentials.KAFKA_PASSWORD_ENV, secret.name, secret.password_key),
    ]


def _from_secret(variable: str, secret: str, key: str) -> EnvVar:
    return {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def spec_json(aggregation: model.Aggregation) -> str:
    """The Aggregation object the jobs re-validate (`--spec-json`), in a stable form."""
    body = {
        "apiVersion": f"{spec.API_GROUP}/{spec.API_VERSION}",
        "kind": spec.KIND,
        "metadata": {"name": aggregation.name, "namespace": aggregation.namespace},
        "spec": aggregation.spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
    }
    # Sorted and compact: the argument, and so the SparkApplication, changes only with the spec.
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def rollup_levels(aggregation: model.Aggregation) -> tuple[model.Level, ...]:
    """The levels that get a rollup job (see the module docstring)."""
    if len(aggregation.levels) > 1:
        return aggregation.levels[1:]
    return aggregation.levels if aggregation.finest.retention is not None else ()


def stream_application(
    aggregation: model.Aggregation,
    owner: Owner,
    settings: JobSettings,
    executors: int | None = None,
) -> Manifest[ApplicationSpec]:
    """The SparkApplication of the streaming job; `executors`: the count autoscaling chose
    (spec.spark.autoscale), else spec.spark.executor.instances."""
    app_spec = _application_spec(
        aggregation,
        settings,
        component=STREAM,
        main_file=STREAM_FILE,
        arguments=_job_arguments(aggregation, settings),
        restart_policy={
            "type": "Always",
            "onFailureRetryInterval": STREAM_RETRY_SECONDS,
            "onSubmissionFailureRetryInterval": STREAM_SUBMISSION_RETRY_SECONDS,
        },
    )
    if executors is not None:
        app_spec["executor"]["instances"] = executors
    name = stream_name(aggregation.name)
    return _manifest(SPARK_APPLICATION, name, owner, _labels(aggregation, STREAM), app_spec)


def rollup_application(
    aggregation: model.Aggregation, level: model.Level, owner: Owner, settings: JobSettings
) -> Manifest[ScheduledApplicationSpec]:
    """The ScheduledSparkApplication that rolls up (and applies retention to) one level."""
    template = _application_spec(
        aggregation,
        settings,
        component=ROLLUP,
        main_file=ROLLUP_FILE,
        arguments=_job_arguments(aggregation, settings, level=level.name),
        restart_policy={
            "type": "OnFailure",
            "onFailureRetries": ROLLUP_RETRIES,
            "onFailureRetryInterval": ROLLUP_RETRY_SECONDS,
            "onSubmissionFailureRetries": ROLLUP_RETRIES,
            "onSubmissionFailureRetryInterval": ROLLUP_RETRY_SECONDS,
        },
    )
    scheduled: ScheduledApplicationSpec = {
        "schedule": rollup_schedule(level.granularity),
        # Buckets are UTC, so the schedule is too.
        "timeZone": "UTC",
        # A slow run must finish before the next starts: two runs would race on one level.
        "concurrencyPolicy": "Forbid",
        "successfulRunHistoryLimit": RUN_HISTORY,
        "failedRunHistoryLimit": RUN_HISTORY,
        "template": template,
    }
    labels = {**_labels(aggregation, ROLLUP), LEVEL_LABEL: level.name}
    name = rollup_name(aggregation.name, level.name)
    return _manifest(SCHEDULED_SPARK_APPLICATION, name, owner, labels, scheduled)


def desired(
    aggregation: model.Aggregation,
    owner: Owner,
    settings: JobSettings,
    stream_executors: int | None = None,
) -> list[AnyManifest]:
    """Every child the Aggregation should have, stream first."""
    rollups = [
        rollup_application(aggregation, level, owner, settings)
        for level in rollup_levels(aggregation)
    ]
    return [stream_application(aggregation, owner, settings, stream_executors), *rollups]


def rollup_schedule(granularity: durations.Duration) -> str:
    """A cron schedule that runs a few minutes after each bucket of `granularity` closes.

    A run rebuilds every complete bucket not yet rolled up, so a schedule that runs more
    often than buckets close (granularities cron cannot express exactly, e.g. 90m or 2w)
    only wastes a little work; it never skips a bucket.
    """
    if granularity.is_calendar:
        months = granularity.months
        every = "*" if months == 1 else ("1" if months % 12 == 0 else f"*/{months}")
        return f"45 0 1 {every} *"
    seconds = granularity.seconds
    if seconds % durations.WEEK == 0:
        return "30 0 * * 1"  # weekly buckets start on Monday (see domain.buckets)
    if seconds % durations.DAY == 0:
        return "15 0 * * *"
    if seconds % durations.HOUR == 0 and durations.DAY % seconds == 0:
        hours = seconds // durations.HOUR
        return "5 * * * *" if hours == 1 else f"5 */{hours} * * *"
    if seconds % durations.MINUTE == 0 and durations.HOUR % seconds == 0:
        minutes = seconds // durations.MINUTE
        return f"2-59/{minutes} * * * *"
    return "5 * * * *"


def pod_affinity(aggregation: model.Aggregation) -> Affinity | None:
    """Prefer nodes that run pods of the referenced SolrCloud, so writes stay node-local."""
    ref = aggregation.spec.solr.solr_cloud_ref
    if ref is None:
        return None
    term: PodAffinityTerm = {
        "labelSelector": {
            "matchLabels": {SOLR_CLOUD_POD_LABEL: ref.name, SOLR_TECHNOLOGY_LABEL: SOLR_TECHNOLOGY}
        },
        "namespaces": [ref.namespace or aggregation.namespace],
        "topologyKey": HOSTNAME_TOPOLOGY,
    }
    # Preferred, not required: a job must still start while Solr pods are being rescheduled.
    return {
        "podAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": term}
            ]
        }
    }


def _solr_cloud_ref(aggregation: model.Aggregation) -> spec.SolrCloudReference:
    ref = aggregation.spec.solr.solr_cloud_ref
    if ref is None:  # validation guarantees exactly one of url and solrCloudRef
        raise ValueError(f"{aggregation.name}: spec.solr names neither url nor solrCloudRef")
    return ref


def _job_arguments(
    aggregation: model.Aggregation, settings: JobSettings, *, level: str | None = None
) -> list[str]:
    arguments = ["--spec-json", spec_json(aggregation)]
    if level is not None:
        arguments += ["--level", level]
    arguments += ["--solr-url", cluster_solr_url(aggregation)]
    return [*arguments, "--data-root", data_root(aggregation, settings.default_data_root)]


def shuffle_partitions(aggregation: model.Aggregation) -> int:
    """The jobs' shuffle (and stream state) partitions, for the most executors they may get."""
    executor = aggregation.spec.spark.executor
    most = executor.instances
    if aggregation.spec.spark.autoscale and executor.max_instances is not None:
        most = max(most, executor.max_instances)
    return capacity.shuffle_partitions(executor.cores, most)


def _application_spec(
    aggregation: model.Aggregation,
    settings: JobSettings,
    *,
    component: str,
    main_file: str,
    arguments: list[str],
    restart_policy: RestartPolicy,
) -> ApplicationSpec:
    spark = aggregation.spec.spark
    pod_labels = _labels(aggregation, component)
    affinity = pod_affinity(aggregation)
    driver: SparkPod = {
        "cores": spark.driver.cores,
        "memory": spark.driver.memory,
        "serviceAccount": settings.service_account,
        "labels": pod_labels,
    }
    executor: SparkPod = {
        "instances": spark.executor.instances,
        "cores": spark.executor.cores,
        "memory": spark.executor.memory,
        "serviceAccount": settings.service_account,
        "labels": pod_labels,
    }
    if affinity is not None:
        driver["affinity"] = affinity
        executor["affinity"] = affinity
    # Executors write and read Solr too (cell writes, the SQL data source's partitions),
    # consume Kafka and write the archive and checkpoints.
    env = solr_credentials_env(aggregation) + solr_ca_env(aggregation) + storage_env(aggregation)
    if component == STREAM:
        env += kafka_credentials_env(aggregation) + kafka_ca_env(aggregation)
    if env:
        driver["env"] = env
        executor["env"] = list(env)
    volumes: list[Volume] = []
    mounts: list[VolumeMount] = []
    claim = data_claim(aggregation, settings)
    if claim is not None:
        volumes.append({"name": DATA_VOLUME, "persistentVolumeClaim": {"claimName": claim}})
        mounts.append({"name": DATA_VOLUME, "mountPath": settings.default_data_root})
    ca_volumes = [(solr_ca_volume(aggregation), SOLR_CA_DIR)]
    if component == STREAM:
        ca_volumes.append((kafka_ca_volume(aggregation), KAFKA_CA_DIR))
    for ca_volume, directory in ca_volumes:
        if ca_volume is not None:
            volumes.append(ca_volume)
            mounts.append({"name": ca_volume["name"], "mountPath": directory, "readOnly": True})
    if mounts:
        driver["volumeMounts"] = mounts
        executor["volumeMounts"] = [{**mount} for mount in mounts]
    app: ApplicationSpec = {
        "type": "Python",
        "mode": "cluster",
        "image": spark.image,
        "imagePullPolicy": "IfNotPresent",
        "sparkVersion": spark.spark_version,
        "mainApplicationFile": main_file,
        "arguments": arguments,
        "sparkConf": {
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": str(shuffle_partitions(aggregation)),
            **storage_conf(aggregation),
        },
        "restartPolicy": restart_policy,
        "driver": driver,
        "executor": executor,
        "deps": job_deps(aggregation, component),
    }
    if volumes:
        app["volumes"] = volumes
    return app


def solr_ca_volume(aggregation: model.Aggregation) -> Volume | None:
    """spec.solr.tls's CA Secret key as a volume holding one file, `ca.crt`; None without."""
    tls = aggregation.spec.solr.tls
    return None if tls is None else _ca_volume(SOLR_CA_VOLUME, tls.ca_secret)


def kafka_ca_volume(aggregation: model.Aggregation) -> Volume | None:
    """spec.source.kafka.security.caSecret as a volume holding `ca.crt`; None without."""
    kafka = aggregation.spec.source.kafka
    secret = kafka.security.ca_secret if kafka is not None else None
    return None if secret is None else _ca_volume(KAFKA_CA_VOLUME, secret)


def _ca_volume(name: str, secret: spec.CaSecret) -> Volume:
    items: list[SecretVolumeItem] = [{"key": secret.key, "path": SOLR_CA_FILE}]
    return {"name": name, "secret": {"secretName": secret.name, "items": items}}


def kafka_ca_env(aggregation: model.Aggregation) -> list[EnvVar]:
    """$CLICKAGG_KAFKA_CA_FILE naming the mounted Kafka CA bundle; none without caSecret."""
    if kafka_ca_volume(aggregation) is None:
        return []
    return [{"name": credentials.KAFKA_CA_FILE_ENV, "value": f"{KAFKA_CA_DIR}/{SOLR_CA_FILE}"}]


def solr_ca_env(aggregation: model.Aggregation) -> list[EnvVar]:
    """$CLICKAGG_SOLR_CA_FILE naming the mounted CA bundle (a path, no secret); none without
    spec.solr.tls."""
    if aggregation.spec.solr.tls is None:
        return []
    return [{"name": credentials.CA_FILE_ENV, "value": f"{SOLR_CA_DIR}/{SOLR_CA_FILE}"}]


def solr_credentials_env(aggregation: model.Aggregation) -> list[EnvVar]:
    """The Solr user and password from spec.solr.basicAuthSecret, as the store reads them
    (`store.credentials`); none without that Secret."""
    secret = aggregation.spec.solr.basic_auth_secret
    if secret is None:
        return []
    return [
        _from_secret(credentials.USERNAME_ENV, secret.name, secret.username_key),
        _from_secret(credentials.PASSWORD_ENV, secret.name, secret.password_key),
    ]


def _labels(aggregation: model.Aggregation, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "clickagg",
        COMPONENT_LABEL: component,
        MANAGED_BY_LABEL: MANAGER,
        AGGREGATION_LABEL: aggregation.name,
    }


def _manifest(
    kind: Kind,
    name: str,
    owner: Owner,
    labels: Mapping[str, str],
    body_spec: SpecT,
) -> Manifest[SpecT]:
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": {
            "name": name,
            "namespace": owner.namespace,
            "labels": dict(labels),
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": body_spec,
    }


def owner_reference(owner: Owner) -> OwnerReference:
    # controller + blockOwnerDeletion: the garbage collector (where there is one) deletes
    # children after the Aggregation; the finalizer deletes them explicitly anyway.
    return {
        "apiVersion": owner.api_version,
        "kind": owner.kind,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
