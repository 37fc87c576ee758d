"""Credentials from the environment, read in this one place: Solr basic auth and Kafka SASL.

A component (operator, job, service, CLI) finds its user and password in its own
environment, which Kubernetes fills from a Secret (`valueFrom.secretKeyRef`) or a mounted
Secret file; they never travel as arguments. For Solr, `$CLICKAGG_SOLR_USERNAME` names the
user, and the password is `$CLICKAGG_SOLR_PASSWORD` or the content of the file
`$CLICKAGG_SOLR_PASSWORD_FILE` names; Kafka's are the same with `KAFKA` for `SOLR`.
Neither set: no credentials (a Solr without authentication, a Kafka without SASL).

Neither `SolrCredentials` nor `KafkaCredentials` shows its password: not in repr, str or an
error message; `KafkaCredentials.jaas_config` (the one rendering that holds it) is for the
Kafka client's options only, never for a log line.

TLS: `$CLICKAGG_SOLR_CA_FILE` names a PEM file of the CA certificates a Solr served over
https is verified against (a mounted Secret or ConfigMap key, or the local SolrCloud's
`ca.crt`); unset, the system's CAs. Verification is never turned off. `$CLICKAGG_KAFKA_CA_FILE`
is the same for a Kafka reached over SSL or SASL_SSL (unset: the JVM's default trust store).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from clickagg import errors

USERNAME_ENV = "CLICKAGG_SOLR_USERNAME"
PASSWORD_ENV = "CLICKAGG_SOLR_PASSWORD"  # noqa: S105 (the variable's name, not a secret)
PASSWORD_FILE_ENV = "CLICKAGG_SOLR_PASSWORD_FILE"  # noqa: S105 (a name)
CA_FILE_ENV = "CLICKAGG_SOLR_CA_FILE"

KAFKA_USERNAME_ENV = "CLICKAGG_KAFKA_USERNAME"
KAFKA_PASSWORD_ENV = "CLICKAGG_KAFKA_PASSWORD"  # noqa: S105 (a name)
KAFKA_PASSWORD_FILE_ENV = "CLICKAGG_KAFKA_PASSWORD_FILE"  # noqa: S105 (a name)
KAFKA_CA_FILE_ENV = "CLICKAGG_KAFKA_CA_FILE"
#: Where the Kafka CA comes from in a cluster, for error messages.
KAFKA_CA_SETTING = "spec.source.kafka.security.caSecret"

#: The JAAS login module of each SASL mechanism the spec allows (Kafka client class names).
LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


@dataclass(frozen=True)
class _UserPassword:
    """A user and its password; the password is left out of repr and str."""

    user: str
    password: str = field(repr=False)

    def __str__(self) -> str:
        return self.user


@dataclass(frozen=True)
class SolrCredentials(_UserPassword):
    """A Solr user and its password; the password is left out of every rendering."""

    def pair(self) -> tuple[str, str]:
        """(user, password), as HTTP basic auth takes them."""
        return self.user, self.password


@dataclass(frozen=True)
class KafkaCredentials(_UserPassword):
    """A Kafka SASL user and its password; the password is left out of repr and str."""

    def jaas_config(self, mechanism: str) -> str:
        """The client's `sasl.jaas.config` for `mechanism`: holds the password, so it goes
        into the Kafka options and nowhere else."""
        module = LOGIN_MODULES.get(mechanism)
        if module is None:
            raise errors.KafkaAuthError(
                f"no SASL mechanism {mechanism!r}: use one of {', '.join(LOGIN_MODULES)}",
                user=self.user,
                mechanism=mechanism,
            )
        return (
            f'{module} required username="{_jaas_quoted(self.user)}" '
            f'password="{_jaas_quoted(self.password)}";'
        )


def kafka_client_settings(
    protocol: str, mechanism: str | None, environ: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """librdkafka settings (confluent_kafka) for a Kafka client outside Spark, such as
    `clickagg generate --kafka`: the same protocol and mechanism as
    spec.source.kafka.security, the user, password and CA from the job's variables.

    Raises KafkaAuthError when a SASL protocol has no user, KafkaTlsError when the named CA
    bundle cannot be read."""
    settings = {"security.protocol": protocol}
    if protocol.endswith("SSL"):
        ca_file = kafka_ca_file_from_environment(environ)
        if ca_file is not None:
            settings["ssl.ca.location"] = str(ca_file)
    if not protocol.startswith("SASL_"):
        return settings
    chosen = mechanism or "SCRAM-SHA-512"
    if chosen not in LOGIN_MODULES:
        raise errors.KafkaAuthError(
            f"no SASL mechanism {chosen!r}: use one of {', '.join(LOGIN_MODULES)}",
            mechanism=chosen,
        )
    found = kafka_from_environment(environ)
    if found is None:
        raise errors.KafkaAuthError(
            f"Kafka {protocol} with {chosen} needs a user: set ${KAFKA_USERNAME_ENV} and "
            f"${KAFKA_PASSWORD_ENV} (or ${KAFKA_PASSWORD_FILE_ENV})",
            mechanism=chosen,
        )
    settings.update(
        {"sasl.mechanism": chosen, "sasl.username": found.user, "sasl.password": found.password}
    )
    return settings


def _jaas_quoted(value: str) -> str:
    """`value` inside a JAAS double-quoted string (Kafka's JaasConfig parser unescapes)."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def from_environment(environ: Mapping[str, str] = os.environ) -> SolrCredentials | None:
    """The Solr credentials the environment names, or None when it names none."""
    found = _read(
        environ,
        "Solr",
        (USERNAME_ENV, PASSWORD_ENV, PASSWORD_FILE_ENV),
        lambda message, user: errors.SolrAuthError(message, user=user),
    )
    return None if found is None else SolrCredentials(*found)


def kafka_from_environment(environ: Mapping[str, str] = os.environ) -> KafkaCredentials | None:
    """The Kafka SASL credentials the environment names, or None when it names none."""
    found = _read(
        environ,
        "Kafka",
        (KAFKA_USERNAME_ENV, KAFKA_PASSWORD_ENV, KAFKA_PASSWORD_FILE_ENV),
        lambda message, user: errors.KafkaAuthError(message, user=user),
    )
    return None if found is None else KafkaCredentials(*found)


def _read(
    environ: Mapping[str, str],
    service: str,
    names: tuple[str, str, str],
    error: Callable[[str, str | None], errors.ClickaggError],
) -> tuple[str, str] | None:
    """(user, password) from the variables `names` (user, password, password file)."""
    user_env, password_env, file_env = names
    user = environ.get(user_env, "").strip()
    password = environ.get(password_env, "")
    password_file = environ.get(file_env, "").strip()
    if not user:
        if password or password_file:
            raise error(
                f"a {service} password is set (${password_env} or ${file_env}) "
                f"but no user: set ${user_env}",
                None,
            )
        return None
    if not password and password_file:
        try:
            password = Path(password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise error(
                f"cannot read the {service} password of user '{user}' from ${file_env} "
                f"({password_file}): {exc.strerror}",
                user,
            ) from None
    if not password:
        raise error(
            f"{service} user '{user}' is set (${user_env}) but no password: set "
            f"${password_env} or ${file_env}",
            user,
        )
    return user, password


def ca_file_from_environment(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The CA bundle `$CLICKAGG_SOLR_CA_FILE` names, or None (the system's CAs) when unset.

    A named file that cannot be read is a SolrTlsError now, not a puzzling failure at the
    first https request."""
    named = environ.get(CA_FILE_ENV, "").strip()
    if not named:
        return None
    return checked_ca_file(Path(named))


def checked_ca_file(path: Path) -> Path:
    """`path` if it is a readable file with at least one PEM certificate; else SolrTlsError."""
    return _checked_pem(path, f"Solr CA bundle {path} (${CA_FILE_ENV})", errors.SolrTlsError)


def kafka_ca_file_from_environment(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The Kafka CA bundle `$CLICKAGG_KAFKA_CA_FILE` names, checked (KafkaTlsError); None
    when unset."""
    named = environ.get(KAFKA_CA_FILE_ENV, "").strip()
    if not named:
        return None
    where = f"Kafka CA bundle {named} (${KAFKA_CA_FILE_ENV}, from {KAFKA_CA_SETTING})"
    return _checked_pem(Path(named), where, errors.KafkaTlsError)


def _checked_pem(
    path: Path, where: str, error: type[errors.SolrTlsError] | type[errors.KafkaTlsError]
) -> Path:
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise error(f"cannot read the {where}: {exc.strerror}") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise error(f"the {where} holds no PEM certificate")
    return path
