"""Every exception clickagg raises, in one tree, so callers can catch by meaning.

ClickaggError
├── SpecError                 an Aggregation spec is invalid (carries every issue with its path)
│   └── SpecFileError         ... in a file: every issue also names its file and line
├── EventContractError        one event breaks the event contract (carries the reason)
├── QuestionError             a KPI question is wrong; names the parameter at fault (a 4xx)
│   └── UnknownAggregation    the question names an Aggregation that is not served
├── JobSetupError             a Spark job cannot start as set up (a setting, a missing jar)
├── LocalStackError           the local engines could not be built or started
│   ├── ToolchainMissing      a needed program (java, mvn, go) is not installed
│   ├── PortInUse             a loopback port the stack needs is taken
│   └── StartupTimeout        an engine did not report ready in time
└── EngineError               a real engine (Solr, Spark, Kafka, Kubernetes) answered with an error
    ├── SolrError             Solr answered with an error
    │   ├── SolrUnreachable   Solr could not be reached or did not answer in time
    │   ├── SolrTlsError      Solr's certificate failed verification against the CA bundle
    │   │                     ($CLICKAGG_SOLR_CA_FILE), or that bundle cannot be read
    │   └── SolrAuthError     Solr refused the credentials (401) or the user's role (403),
    │                         or the credentials are set up wrong; names user and permission
    ├── KafkaAuthError        Kafka refused the SASL credentials, or they are set up wrong;
    │                         names the user and mechanism, never the password
    ├── SqlError              Spark could not run an ad-hoc query (carries Spark's message)
    └── KubeError             the Kubernetes API answered with an error (carries its status
        │                     and what was asked: verb, resource, namespace)
        └── KindNotServed     ... because it does not serve the kind: its CRD is not installed

Callers catch what they can act on: the operator tells SolrUnreachable (retry, reason
SolrUnreachable) from other SolrErrors and KubeError from both, and says which peer
operator to install on a KindNotServed; the CLI prints a SpecFileError's located issues;
the service answers a QuestionError with a 4xx naming its parameter and a SolrError with
a 503.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class ClickaggError(Exception):
    """The root of every clickagg error."""


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a spec: where it is (a dotted path) and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class SpecError(ClickaggError):
    """An Aggregation spec is invalid; `issues` lists every problem with its field path."""

    def __init__(self, issues: Sequence[SpecIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


@dataclass(frozen=True)
class Located:
    """A spec issue with the file and line it belongs to."""

    file: Path
    line: int | None
    issue: SpecIssue

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        return f"{where}: {self.issue}"


class SpecFileError(SpecError):
    """SpecError whose issues also carry their file and line."""

    def __init__(self, located: Sequence[Located]) -> None:
        super().__init__([item.issue for item in located])
        self.located = list(located)

    def __str__(self) -> str:
        return "\n".join(str(item) for item in self.located)


class EventContractError(ClickaggError):
    """One event breaks the event contract; the message is the dead-letter reason."""


class QuestionError(ClickaggError):
    """A KPI question is wrong; `parameter` names the request parameter at fault."""

    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        super().__init__(f"{parameter}: {message}")


class UnknownAggregation(QuestionError):
    """The question names an Aggregation that is not served."""


class JobSetupError(ClickaggError):
    """A Spark job cannot start as set up: a bad Spark setting, or a jar not on its classpath."""


class LocalStackError(ClickaggError):
    """The local engines could not be built or started."""


class ToolchainMissing(LocalStackError):
    """A program the local stack needs (java, mvn, go) is not installed."""


class PortInUse(LocalStackError):
    """A loopback port the local stack needs is already taken."""


class StartupTimeout(LocalStackError):
    """An engine did not report ready in time."""


class EngineError(ClickaggError):
    """A real engine (Solr, Kafka, Kubernetes) answered with an error."""


class SolrError(EngineError):
    """Solr answered with an error."""


class SolrUnreachable(SolrError):
    """Solr could not be reached, or did not answer in time: worth retrying later."""


class SolrTlsError(SolrError):
    """Solr's TLS certificate could not be verified (or the CA bundle named for it could not
    be read): the message names the CA bundle used and `$CLICKAGG_SOLR_CA_FILE`. Not worth
    retrying: the same certificate fails again."""


class SolrAuthError(SolrError):
    """Solr refused the request: no or wrong credentials (401), or the user's role lacks a
    permission (403); or the environment's credentials are incomplete.

    `user` is the user sent (None: none), `status` the HTTP status (None: a set-up problem,
    no request made) and `permission` the Solr permission the request needed, when known.
    Never carries a password.
    """

    def __init__(
        self,
        message: str,
        *,
        user: str | None = None,
        status: int | None = None,
        permission: str | None = None,
    ) -> None:
        super().__init__(message)
        self.user, self.status, self.permission = user, status, permission


class KafkaAuthError(EngineError):
    """Kafka refused the SASL login (wrong user or password, unknown mechanism), or the
    environment's Kafka credentials are incomplete. `user` is the user sent (None: none),
    `mechanism` the SASL mechanism. Never carries a password."""

    def __init__(
        self, message: str, *, user: str | None = None, mechanism: str | None = None
    ) -> None:
        super().__init__(message)
        self.user, self.mechanism = user, mechanism


class KafkaTlsError(EngineError):
    """Kafka's TLS certificate failed verification against the CA bundle the stream was given
    (`$CLICKAGG_KAFKA_CA_FILE`, from spec.source.kafka.security.caSecret), or that bundle
    could not be read. The message names both. Not worth retrying."""


class SqlError(EngineError):
    """Spark could not run an ad-hoc query; the message is Spark's, without a JVM stack."""


class KubeError(EngineError):
    """The Kubernetes API answered with an error.

    `status` is its HTTP status (None when no answer came) and `answer` the API server's
    own message. `verb`, `resource` (plural.group) and `namespace` say what was asked, when
    the call was about a kind of object: enough to name the RBAC rule a 403 lacks.
    """

    def __init__(
        self,
        message: str,
        status: int | None = None,
        *,
        answer: str = "",
        verb: str = "",
        resource: str = "",
        namespace: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.answer = answer
        self.verb, self.resource, self.namespace = verb, resource, namespace


class KindNotServed(KubeError):
    """The API server does not serve the kind at all (its CRD is not installed): a plain
    404 page, where a missing object of a served kind gets a JSON Status."""
