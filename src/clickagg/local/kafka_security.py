"""SASL/SCRAM-SHA-512 for the local Kafka broker: users, passwords, their stored form.

`create(directory)` generates one password per user and writes them to `credentials.json`
(and each alone to `<role>.password`, for `$CLICKAGG_KAFKA_PASSWORD_FILE`), readable by the
owner only (0600). The broker learns the users in KRaft's bootstrap metadata: `StorageTool
format --add-scram 'SCRAM-SHA-512=[name=U,salt="S",saltedpassword="P",iterations=N]'` (KIP-900;
the argument's grammar is `org.apache.kafka.metadata.storage.ScramParser`'s). It is given
the salted password (PBKDF2-HMAC-SHA-512, SCRAM's Hi() of RFC 5802), never the password, so
no password is ever on a command line. Nothing here prints or logs a password.

Two users, no authorizer (every authenticated user may do everything):

- `admin` (clickagg-admin): the broker's own inter-broker login, topics, test producers;
- `jobs` (clickagg-jobs): the streaming job's consumer.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from pathlib import Path

from clickagg.local import passwords

MECHANISM = "SCRAM-SHA-512"
ADMIN = "admin"
JOBS = "jobs"
ROLES = (ADMIN, JOBS)
USERS = {ADMIN: "clickagg-admin", JOBS: "clickagg-jobs"}
#: Kafka's default and the least ScramMechanism.SCRAM_SHA_512 accepts is 4096.
ITERATIONS = 8192
_SALT_BYTES = 32


def salted_password(password: str, salt: bytes, iterations: int = ITERATIONS) -> bytes:
    """SCRAM's SaltedPassword := Hi(password, salt, i), which is PBKDF2 with HMAC-SHA-512."""
    return hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)


def add_scram_argument(user: str, password: str, salt: bytes) -> str:
    """One `--add-scram` value for `user`: salt and salted password, not the password."""
    salted = base64.b64encode(salted_password(password, salt)).decode()
    return (
        f'{MECHANISM}=[name={user},salt="{base64.b64encode(salt).decode()}",'
        f'saltedpassword="{salted}",iterations={ITERATIONS}]'
    )


def create(directory: Path) -> list[str]:
    """Fresh passwords for every user into `directory`; the `--add-scram` values."""
    generated = passwords.generate(directory, USERS)
    return [
        add_scram_argument(USERS[role], generated[role], secrets.token_bytes(_SALT_BYTES))
        for role in ROLES
    ]


def password_file(directory: Path, role: str) -> Path:
    """The file that holds only `role`'s password (what a mounted Secret file looks like)."""
    return passwords.password_file(directory, role)


def credentials(directory: Path, role: str) -> tuple[str, str]:
    """(user, password) of `role` as `create` stored them in `directory`."""
    return passwords.read(
        directory, role, ROLES, "Kafka", "start Kafka with SASL (`clickagg local up --kafka-sasl`)"
    )


def jaas_config(user: str, password: str) -> str:
    """The JAAS line of a SCRAM login (the broker's inter-broker login)."""
    return (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{user}" password="{password}";'
    )


def client_config(
    directory: Path, role: str = ADMIN, ca_file: Path | None = None
) -> dict[str, str]:
    """librdkafka settings (confluent_kafka) that log in as `role`; with `ca_file`, over TLS
    (SASL_SSL) verified against that CA bundle."""
    user, password = credentials(directory, role)
    settings = {
        "security.protocol": "SASL_SSL" if ca_file else "SASL_PLAINTEXT",
        "sasl.mechanism": MECHANISM,
        "sasl.username": user,
        "sasl.password": password,
    }
    if ca_file:
        settings["ssl.ca.location"] = str(ca_file)
    return settings
