"""The Kubeflow Spark Operator's part, played locally for tests: SparkApplications run.

The local control plane has no kubelet, so no driver pod ever starts. This runner watches
the SparkApplications of one namespace (a list every 0.5 s: one request, no watch to
stall) and does for each what the Spark Operator does in a cluster, with a local process
in place of the driver pod:

- a new application is submitted with the pyspark wheel's own `spark-submit --master
  local[2]`, its `mainApplicationFile` (`local:///opt/clickagg/jobs/x.py`, the path in the
  job image, maps to the repo's `jobs/x.py`), its `deps.jars` (the JVM sessionizer, built
  into the cache), its `sparkConf`, its driver memory and its
  `arguments` (`--data-root` moved below the runner's work dir, `--solr-url` pointed at the
  local SolrCloud, `--metrics-port 0` added), PYTHONPATH=src. spark-submit is chosen over
  `python jobs/x.py --master` because it is what the Spark Operator runs: the job takes its
  `spark.session()` path, with the master and conf given from outside;
- its state is written through the status subresource, as the Spark Operator writes it:
  SUBMITTED when the process starts, RUNNING once it is still alive at the next look,
  COMPLETED when it exits 0, FAILED with `errorMessage` (the log's tail) otherwise;
- a changed spec (a new `metadata.generation`) kills the job and submits it again, as the
  Spark Operator does;
- a deleted application's job is killed (its whole process group: spark-submit's JVM, the
  Python driver and the Python workers).

ScheduledSparkApplications run on demand (`run_scheduled`): as the Spark Operator does on
each tick of the schedule, a SparkApplication is created from the template, owned by the
scheduled one and labelled with its name, and runs like any other. Not played:
restartPolicy (a failed or completed job stays so), the cron schedule itself, executors
(local mode runs everything in the driver). `stop()` kills every job
and writes no status: the applications may be gone by then.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from clickagg.local import kube as local_kube
from clickagg.operator import children
from clickagg.pipeline import session as spark_session

REPO = Path(__file__).resolve().parents[1]
IMAGE_ROOT = "local:///opt/clickagg/"
POLL_SECONDS = 0.5
KILL_GRACE_SECONDS = 10.0
ERROR_TAIL_LINES = 15
ERROR_MAX_CHARS = 2000
#: What a job must get from its SparkApplication, not from the test process.
CREDENTIAL_PREFIXES = ("CLICKAGG_SOLR_", "CLICKAGG_KAFKA_")

#: The Spark Operator's label on the runs of a ScheduledSparkApplication.
SCHEDULED_APP_LABEL = "sparkoperator.k8s.io/scheduled-app-name"
SUBMITTED, RUNNING, COMPLETED, FAILED = "SUBMITTED", "RUNNING", "COMPLETED", "FAILED"


@dataclass
class Job:
    """One submission of one SparkApplication."""

    name: str
    uid: str
    generation: int
    attempt: int
    argv: list[str]
    log: Path
    process: subprocess.Popen[bytes]
    state: str = SUBMITTED
    started: float = field(default_factory=time.monotonic)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass(frozen=True)
class JobView:
    """What a test may look at: a snapshot of one job."""

    name: str
    pid: int
    state: str
    attempt: int
    returncode: int | None
    log: Path
    argv: tuple[str, ...]


class SparkOperatorRunner:
    """Runs the SparkApplications of `namespace` as local spark-submit processes.

    Use as a context manager, or call `start()` and `stop()`.
    """

    def __init__(
        self,
        kubeconfig: Path,
        namespace: str,
        work_dir: Path,
        *,
        solr_url: str | None = None,
        master: str = "local[2]",
        poll_seconds: float = POLL_SECONDS,
        python: str = sys.executable,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.work_dir = work_dir
        self.solr_url = solr_url
        self.master = master
        self.poll_seconds = poll_seconds
        self.python = python
        self.errors: list[str] = []  # what the loop survived, for a failing test
        self._jobs: dict[str, Job] = {}  # by application uid
        self._attempts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._api: k8s_client.ApiClient | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> SparkOperatorRunner:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        (self.work_dir / "logs").mkdir(parents=True, exist_ok=True)
        self._api = local_kube.api_client(self.kubeconfig)
        self._thread = threading.Thread(
            target=self._loop, name=f"spark-operator-runner-{self.namespace}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop watching, then kill every job's process group and wait for it."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            _kill(job.process)
        if self._api is not None:
            self._api.close()  # type: ignore[no-untyped-call]
            self._api = None

    # ------------------------------------------------------------------ for tests

    def jobs(self) -> dict[str, JobView]:
        """The current job of every application still known, by application name."""
        with self._lock:
            return {job.name: _view(job) for job in self._jobs.values()}

    def wait_for(self, name: str, state: str, timeout: float = 60.0) -> JobView:
        """Wait until the job of application `name` has reached `state`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            view = self.jobs().get(name)
            if view is not None and view.state == state:
                return view
            time.sleep(0.2)
        raise TimeoutError(
            f"{self.namespace}/{name} not {state} after {timeout:.0f}s: {self.jobs().get(name)}"
        )

    def run_scheduled(self, name: str) -> str:
        """Start one run of ScheduledSparkApplication `name` now; the run's name."""
        kind = children.SCHEDULED_SPARK_APPLICATION
        scheduled = cast(
            dict[str, Any],
            self._objects().get_namespaced_custom_object(
                kind.group, kind.version, self.namespace, kind.plural, name
            ),
        )
        run_name = f"{name}-{time.time_ns() // 1_000_000}"
        application = {
            "apiVersion": children.SPARK_APPLICATION.api_version,
            "kind": children.SPARK_APPLICATION.kind,
            "metadata": {
                "name": run_name,
                "namespace": self.namespace,
                "labels": {SCHEDULED_APP_LABEL: name},
                "ownerReferences": [
                    {
                        "apiVersion": kind.api_version,
                        "kind": kind.kind,
                        "name": name,
                        "uid": scheduled["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": scheduled["spec"]["template"],
        }
        application_kind = children.SPARK_APPLICATION
        self._objects().create_namespaced_custom_object(
            application_kind.group,
            application_kind.version,
            self.namespace,
            application_kind.plural,
            application,
        )
        return run_name

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._sync()
            except Exception as exc:  # the API server restarting, a 409, a bad application
                problem = repr(exc)
                if not self.errors or self.errors[-1] != problem:
                    self.errors.append(problem)  # a test shows them; the loop goes on
            self._stopping.wait(self.poll_seconds)

    def _sync(self) -> None:
        seen: set[str] = set()
        for app in self._applications():
            metadata = app["metadata"]
            uid, generation = str(metadata["uid"]), int(metadata.get("generation") or 1)
            seen.add(uid)
            if metadata.get("deletionTimestamp"):
                continue  # deleted below once it is gone from the list
            job = self._jobs.get(uid)
            if job is not None and job.generation != generation:
                # The Spark Operator kills and resubmits an application whose spec changed.
                _kill(job.process)
                job = None
            if job is None:
                self._submit(app)
            else:
                self._follow(job)
        for uid in [uid for uid in self._jobs if uid not in seen]:
            with self._lock:
                job = self._jobs.pop(uid)
            _kill(job.process)  # the application was deleted: so is its driver

    def _applications(self) -> list[dict[str, Any]]:
        kind = children.SPARK_APPLICATION
        found = self._objects().list_namespaced_custom_object(
            kind.group, kind.version, self.namespace, kind.plural, _request_timeout=10
        )
        return list(cast(dict[str, Any], found).get("items", []))

    def _submit(self, app: Mapping[str, Any]) -> None:
        metadata, spec = app["metadata"], app["spec"]
        name, uid = str(metadata["name"]), str(metadata["uid"])
        attempt = self._attempts.get(uid, 0) + 1
        self._attempts[uid] = attempt
        log = self.work_dir / "logs" / f"{name}-{attempt}.log"
        argv = self._command(spec)
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._environment(name, spec),
                cwd=REPO,
                start_new_session=True,
            )
        job = Job(name, uid, int(metadata.get("generation") or 1), attempt, argv, log, process)
        with self._lock:
            self._jobs[uid] = job
        self._write_state(
            job,
            SUBMITTED,
            extra={
                "submissionAttempts": attempt,
                "terminationTime": None,
                "lastSubmissionAttemptTime": _now(),
                "submissionID": f"{uid[:8]}-{attempt}",
                "sparkApplicationId": f"local-{process.pid}",
            },
        )

    def _follow(self, job: Job) -> None:
        returncode = job.process.poll()
        if returncode is None:
            if job.state == SUBMITTED:
                self._write_state(job, RUNNING, extra={"executionAttempts": job.attempt})
            return
        if job.state in (COMPLETED, FAILED):
            return
        if returncode == 0:
            self._write_state(job, COMPLETED, extra={"terminationTime": _now()})
        else:
            message = f"driver exited with code {returncode}: {_tail(job.log)}"
            self._write_state(job, FAILED, error=message, extra={"terminationTime": _now()})

    def _write_state(
        self, job: Job, state: str, *, error: str | None = None, extra: Mapping[str, Any]
    ) -> None:
        # A merge patch: None drops what an earlier attempt left (its error, its end).
        application_state: dict[str, Any] = {"state": state, "errorMessage": error}
        body = {
            "status": {
                "applicationState": application_state,
                "driverInfo": {"podName": f"{job.name}-driver"},  # the schema requires it
                **extra,
            }
        }
        kind = children.SPARK_APPLICATION
        try:
            self._objects().patch_namespaced_custom_object_status(
                kind.group,
                kind.version,
                self.namespace,
                kind.plural,
                job.name,
                body,
                _request_timeout=10,
            )
        except ApiException as exc:
            if exc.status != 404:  # deleted meanwhile: the next pass kills the job
                raise
        with self._lock:
            job.state = state

    # ------------------------------------------------------------------ the command

    def _command(self, spec: Mapping[str, Any]) -> list[str]:
        main_file = _local_file(str(spec["mainApplicationFile"]))
        conf = {**spark_session.LOCAL_CONF, **(spec.get("sparkConf") or {})}
        memory = (spec.get("driver") or {}).get("memory")
        if memory:
            conf["spark.driver.memory"] = str(memory)
        argv = [str(_spark_submit()), "--master", self.master]
        jars = [_local_jar(str(jar)) for jar in (spec.get("deps") or {}).get("jars") or []]
        if jars:
            argv += ["--jars", ",".join(jars)]
        for key, value in conf.items():
            argv += ["--conf", f"{key}={value}"]
        return [*argv, str(main_file), *self._arguments(main_file, spec.get("arguments") or [])]

    def _arguments(self, main_file: Path, arguments: Sequence[str]) -> list[str]:
        rewritten = list(arguments)
        for index, argument in enumerate(rewritten[:-1]):
            value = rewritten[index + 1]
            if argument == "--data-root":
                rewritten[index + 1] = str(self.work_dir / "data" / value.lstrip("/"))
            elif argument == "--solr-url" and self.solr_url is not None:
                rewritten[index + 1] = self.solr_url
        if "--metrics-port" not in rewritten and main_file.name == "stream.py":
            rewritten += ["--metrics-port", "0"]  # many jobs on one host: no fixed port
        return rewritten

    def _environment(self, name: str, spec: Mapping[str, Any]) -> dict[str, str]:
        """This process's environment without its Solr and Kafka credentials and CA, plus the
        driver's own `env`, each Secret reference resolved and each mounted Secret volume
        written below the work dir, as a kubelet would: the job gets only what the
        SparkApplication gives it."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(CREDENTIAL_PREFIXES)}
        driver = spec.get("driver") or {}
        mounts = self._mounted_secrets(name, spec)
        for variable in driver.get("env") or []:
            if "value" in variable:
                value = str(variable["value"])
                for mount_path, local in mounts.items():
                    if value.startswith(mount_path + "/"):
                        value = str(local) + value.removeprefix(mount_path)
                env[variable["name"]] = value
            else:
                ref = variable["valueFrom"]["secretKeyRef"]
                env[variable["name"]] = self._secret(ref["name"])[ref["key"]].decode()
        source = str(REPO / "src")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
        env["PYSPARK_PYTHON"] = self.python
        env["PYSPARK_DRIVER_PYTHON"] = self.python
        return env

    def _secret(self, name: str) -> dict[str, bytes]:
        if self._api is None:
            raise RuntimeError("the runner is not started")
        found = k8s_client.CoreV1Api(self._api).read_namespaced_secret(name, self.namespace)
        return {key: base64.b64decode(value) for key, value in (found.data or {}).items()}

    def _mounted_secrets(self, name: str, spec: Mapping[str, Any]) -> dict[str, Path]:
        """{mountPath: local dir} for each Secret volume the driver mounts, its items written
        (0600) into a directory of their own under the work dir."""
        volumes = {v["name"]: v for v in spec.get("volumes") or [] if "secret" in v}
        mounted: dict[str, Path] = {}
        for mount in (spec.get("driver") or {}).get("volumeMounts") or []:
            volume = volumes.get(mount["name"])
            if volume is None:
                continue
            data = self._secret(volume["secret"]["secretName"])
            local = self.work_dir / "mounts" / name / mount["name"]
            local.mkdir(parents=True, exist_ok=True, mode=0o700)
            for item in volume["secret"].get("items") or [{"key": k, "path": k} for k in data]:
                target = local / item["path"]
                target.write_bytes(data[item["key"]])
                target.chmod(0o600)
            mounted[str(mount["mountPath"]).rstrip("/")] = local
        return mounted

    def _objects(self) -> k8s_client.CustomObjectsApi:
        if self._api is None:
            raise RuntimeError("the runner is not started")
        return k8s_client.CustomObjectsApi(self._api)


# ---------------------------------------------------------------------- helpers


def _local_file(main_file: str) -> Path:
    """The repo file that the job image holds at `local:///opt/clickagg/<path>`."""
    if not main_file.startswith(IMAGE_ROOT):
        raise ValueError(f"{main_file} is not a file of the clickagg job image")
    return REPO / main_file.removeprefix(IMAGE_ROOT)


def _local_jar(jar: str) -> str:
    """The jar the job image holds: the JVM sessionizer or a jar of Spark's Kafka source,
    built or resolved by Maven into the cache."""
    from clickagg.local import kafka, sessionizer

    if jar == children.SESSIONIZER_JAR:
        return str(sessionizer.jar())
    if jar in children.KAFKA_CONNECTOR_JARS:
        by_name = {kafka.stripped_jar_name(path): path for path in kafka.spark_connector_jars()}
        return by_name[jar.rsplit("/", 1)[1]]
    raise ValueError(f"{jar} is not a jar of the clickagg job image")


def _spark_submit() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-submit"


def _kill(process: subprocess.Popen[bytes]) -> None:
    """TERM the job's process group (it leads its own session), KILL what lingers."""
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=KILL_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=KILL_GRACE_SECONDS)
    # The leader is gone; Python workers the JVM forked may still be on their way out.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def group_alive(pid: int) -> bool:
    """Whether any process of the job's process group (led by `pid`) still exists."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    wanted = [line for line in lines if line.strip()][-ERROR_TAIL_LINES:]
    return "\n".join(wanted)[-ERROR_MAX_CHARS:]


def _view(job: Job) -> JobView:
    return JobView(
        job.name,
        job.process.pid,
        job.state,
        job.attempt,
        job.process.poll(),
        job.log,
        tuple(job.argv),
    )


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
