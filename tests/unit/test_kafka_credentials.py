"""Kafka SASL credentials from the environment, the source's options, and the spec's rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from clickagg import errors
from clickagg.domain import validation
from clickagg.local import kafka_security
from clickagg.pipeline import stream
from clickagg.store import credentials
from examples import GOOD

pytestmark = pytest.mark.unit

SECRET = "k4fka-s3cr3t-never-shown"  # noqa: S105 (a test value)
JOBS = {credentials.KAFKA_USERNAME_ENV: "clickagg-jobs", credentials.KAFKA_PASSWORD_ENV: SECRET}


def kafka_spec(security: dict[str, Any] | None = None) -> dict[str, Any]:
    obj = yaml.safe_load((GOOD[0].parent / "shop-kpis.yaml").read_text())
    kafka: dict[str, Any] = {"bootstrapServers": "kafka:9092", "topic": "clicks"}
    if security is not None:
        kafka["security"] = security
    obj["spec"]["source"] = {"type": "kafka", "kafka": kafka}
    return cast(dict[str, Any], obj)


SASL = {
    "protocol": "SASL_SSL",
    "saslMechanism": "SCRAM-SHA-512",
    "credentialsSecret": {"name": "kafka-jobs"},
}


def test_no_variables_mean_no_kafka_credentials() -> None:
    assert credentials.kafka_from_environment({}) is None


def test_password_from_a_file_and_never_shown(tmp_path: Path) -> None:
    password_file = tmp_path / "password"
    password_file.write_text(SECRET + "\n")
    found = credentials.kafka_from_environment(
        {
            credentials.KAFKA_USERNAME_ENV: "clickagg-jobs",
            credentials.KAFKA_PASSWORD_FILE_ENV: str(password_file),
        }
    )
    assert found is not None
    assert (found.user, found.password) == ("clickagg-jobs", SECRET)
    assert SECRET not in repr(found) and SECRET not in str(found)


@pytest.mark.parametrize(
    ("mechanism", "module"),
    [
        ("SCRAM-SHA-512", "org.apache.kafka.common.security.scram.ScramLoginModule"),
        ("SCRAM-SHA-256", "org.apache.kafka.common.security.scram.ScramLoginModule"),
        ("PLAIN", "org.apache.kafka.common.security.plain.PlainLoginModule"),
    ],
)
def test_jaas_config_names_the_login_module_of_each_mechanism(mechanism: str, module: str) -> None:
    found = credentials.KafkaCredentials("u", 'p"q\\r')
    assert found.jaas_config(mechanism) == (
        f'{module} required username="u" password="p\\"q\\\\r";'
    )


def test_a_user_without_password_names_the_user_and_the_variables() -> None:
    with pytest.raises(errors.KafkaAuthError, match=r"'clickagg-jobs'.*CLICKAGG_KAFKA_PASSWORD"):
        credentials.kafka_from_environment({credentials.KAFKA_USERNAME_ENV: "clickagg-jobs"})


def test_a_password_without_user_is_an_error_without_the_password() -> None:
    with pytest.raises(errors.KafkaAuthError) as raised:
        credentials.kafka_from_environment({credentials.KAFKA_PASSWORD_ENV: SECRET})
    assert SECRET not in str(raised.value)


def test_sasl_source_options_carry_protocol_mechanism_and_jaas_but_repr_hides_it() -> None:
    source = stream.source_of(validation.validate(kafka_spec(SASL)), JOBS)
    assert source.options["kafka.security.protocol"] == "SASL_SSL"
    assert source.options["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    jaas = source.options["kafka.sasl.jaas.config"]
    assert jaas.startswith("org.apache.kafka.common.security.scram.ScramLoginModule required ")
    assert 'username="clickagg-jobs"' in jaas and SECRET in jaas
    assert SECRET not in repr(source) and SECRET not in str(source)
    assert (source.sasl_user, source.sasl_mechanism) == ("clickagg-jobs", "SCRAM-SHA-512")


def test_plaintext_source_has_no_sasl_options_even_with_credentials_set() -> None:
    source = stream.source_of(validation.validate(kafka_spec()), JOBS)
    assert source.options["kafka.security.protocol"] == "PLAINTEXT"
    assert not any("sasl" in key for key in source.options)


def test_a_sasl_source_without_credentials_in_the_environment_says_what_to_set() -> None:
    aggregation = validation.validate(kafka_spec(SASL))
    with pytest.raises(errors.KafkaAuthError, match="CLICKAGG_KAFKA_USERNAME"):
        stream.source_of(aggregation, {})


@pytest.mark.parametrize(
    ("security", "path", "message"),
    [
        ({"protocol": "SASL_PLAINTEXT"}, "saslMechanism", "is required when protocol"),
        (
            {"protocol": "SASL_PLAINTEXT", "saslMechanism": "PLAIN"},
            "credentialsSecret",
            "is required when protocol",
        ),
        ({"saslMechanism": "PLAIN"}, "saslMechanism", "has no effect with protocol PLAINTEXT"),
        (
            {"protocol": "SSL", "credentialsSecret": {"name": "s"}},
            "credentialsSecret",
            "has no effect with protocol SSL",
        ),
        (
            {**SASL, "protocol": "SASL_PLAINTEXT", "caSecret": {"name": "ca"}},
            "caSecret",
            "has no effect with protocol SASL_PLAINTEXT",
        ),
    ],
)
def test_sasl_fields_go_together(security: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(errors.SpecError) as raised:
        validation.validate(kafka_spec(security))
    issues = {issue.path: issue.message for issue in raised.value.issues}
    assert message in issues[f"spec.source.kafka.security.{path}"]


def test_add_scram_gives_kafka_the_salted_password_never_the_password() -> None:
    salt = bytes(range(32))
    argument = kafka_security.add_scram_argument("clickagg-jobs", SECRET, salt)
    assert argument.startswith("SCRAM-SHA-512=[name=clickagg-jobs,salt=")
    assert f"iterations={kafka_security.ITERATIONS}]" in argument
    assert SECRET not in argument
    assert len(kafka_security.salted_password(SECRET, salt)) == 64  # SHA-512's output


def test_a_tls_source_trusts_the_ca_the_environment_names(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    environ = {**JOBS, credentials.KAFKA_CA_FILE_ENV: str(ca)}
    source = stream.source_of(validation.validate(kafka_spec(SASL)), environ)
    assert source.options["kafka.ssl.truststore.type"] == "PEM"
    assert source.options["kafka.ssl.truststore.location"] == str(ca)
    assert source.ca_file == str(ca)
    # Without TLS the CA changes nothing.
    plain = stream.source_of(validation.validate(kafka_spec()), environ)
    assert not any("ssl" in key for key in plain.options)


def test_an_unreadable_kafka_ca_names_the_file_the_variable_and_the_spec_field(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nowhere.crt"
    environ = {**JOBS, credentials.KAFKA_CA_FILE_ENV: str(missing)}
    with pytest.raises(errors.KafkaTlsError) as raised:
        stream.source_of(validation.validate(kafka_spec(SASL)), environ)
    message = str(raised.value)
    assert str(missing) in message and credentials.KAFKA_CA_FILE_ENV in message
    assert "spec.source.kafka.security.caSecret" in message


def test_producer_settings_log_in_as_the_jobs_do(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    environ = {**JOBS, credentials.KAFKA_CA_FILE_ENV: str(ca)}
    settings = credentials.kafka_client_settings("SASL_SSL", "SCRAM-SHA-256", environ)
    assert settings == {
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": str(ca),
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "clickagg-jobs",
        "sasl.password": SECRET,
    }
    assert credentials.kafka_client_settings("PLAINTEXT", None, environ) == {
        "security.protocol": "PLAINTEXT"
    }


def test_producer_settings_without_a_user_name_the_variables() -> None:
    with pytest.raises(errors.KafkaAuthError) as raised:
        credentials.kafka_client_settings("SASL_PLAINTEXT", None, {})
    assert credentials.KAFKA_USERNAME_ENV in str(raised.value)
    assert raised.value.mechanism == "SCRAM-SHA-512"
