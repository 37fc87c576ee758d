"""Every exception clickagg raises, in one tree, so callers can catch by meaning.

ClickaggError
├── SpecError                 an Aggregation spec is invalid (carries every issue with its path)
├── EventContractError        one event breaks the event contract (carries the reason)
├── QuestionError             a KPI question is wrong; names the parameter at fault (a 4xx)
│   └── UnknownAggregation    the question names an Aggregation that is not served
├── LocalStackError           the local engines could not be built or started
│   ├── ToolchainMissing      a needed program (java, mvn, go) is not installed
│   ├── PortInUse             a loopback port the stack needs is taken
│   └── StartupTimeout        an engine did not report ready in time
└── AdapterError              a real engine answered with an error
    ├── SolrError             Solr answered with an error or could not be reached
    ├── SqlError              Spark could not run an ad-hoc query (carries Spark's message)
    └── KubeError             the Kubernetes API answered with an error
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


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


class EventContractError(ClickaggError):
    """One event breaks the event contract; the message is the dead-letter reason."""


class QuestionError(ClickaggError):
    """A KPI question is wrong; `parameter` names the request parameter at fault."""

    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        super().__init__(f"{parameter}: {message}")


class UnknownAggregation(QuestionError):
    """The question names an Aggregation that is not served."""


class LocalStackError(ClickaggError):
    """The local engines could not be built or started."""


class ToolchainMissing(LocalStackError):
    """A program the local stack needs (java, mvn, go) is not installed."""


class PortInUse(LocalStackError):
    """A loopback port the local stack needs is already taken."""


class StartupTimeout(LocalStackError):
    """An engine did not report ready in time."""


class AdapterError(ClickaggError):
    """A real engine answered with an error."""


class SolrError(AdapterError):
    """Solr answered with an error or could not be reached."""


class SqlError(AdapterError):
    """Spark could not run an ad-hoc query; the message is Spark's, without a JVM stack."""


class KubeError(AdapterError):
    """The Kubernetes API answered with an error."""
