"""TLS for the local SolrCloud: a CA, a serving certificate for the node hosts, Java's stores.

`create(directory, hosts)` makes a fresh CA and a serving certificate whose subject
alternative names are the node hosts (127.0.0.2, 127.0.0.3 in tests) plus 127.0.0.1 and
localhost, with the project's PKI (`domain.certificates`), and writes into `directory`
(0700), every file readable by the owner only (0600):

- `ca.crt`: the CA certificate (PEM), what clients verify against (`$CLICKAGG_SOLR_CA_FILE`);
- `keystore.p12`: the serving key and chain (PKCS12), encrypted with a generated password;
- `keystore.password`: that password, which the launcher reads from the file (never an
  argument, a system property or a log line);
- `truststore.p12`: the CA as a Java trust anchor (PKCS12, no secret, no password), which
  the nodes verify each other with.

The CA's key is not kept: a cluster gets a new CA each time it starts, as it gets new
passwords.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from clickagg.domain import certificates

CA_FILE = "ca.crt"
KEYSTORE_FILE = "keystore.p12"
KEYSTORE_PASSWORD_FILE = "keystore.password"  # noqa: S105 (a file name)
TRUSTSTORE_FILE = "truststore.p12"
CA_NAME = "clickagg-local-solr-ca"
KEY_ALIAS = "solr"
_PASSWORD_BYTES = 24
# Names every local node may be reached by, besides its own address.
_ALWAYS = ("127.0.0.1", "localhost")


def create(directory: Path, hosts: Sequence[str], ca_name: str = CA_NAME) -> Path:
    """Fresh CA, serving certificate and stores for `hosts` in `directory`; the directory.
    (The local Kafka's TLS uses the same files, with its own `ca_name`.)"""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    names = list(dict.fromkeys([*hosts, *_ALWAYS]))
    certs = certificates.ensure(None, names, ca_name=ca_name)
    password = secrets.token_urlsafe(_PASSWORD_BYTES)
    _write_private(directory / CA_FILE, certs.ca_bundle)
    _write_private(directory / TRUSTSTORE_FILE, certificates.pkcs12_truststore(certs.ca_bundle))
    _write_private(directory / KEYSTORE_PASSWORD_FILE, password.encode("utf-8"))
    keystore = certificates.pkcs12_keystore(certs, KEY_ALIAS, password)
    _write_private(directory / KEYSTORE_FILE, keystore)
    return directory


def ca_file(directory: Path) -> Path:
    """The CA certificate clients of a cluster made by `create(directory, ...)` trust."""
    return directory / CA_FILE


def keystore_password(directory: Path) -> str:
    """The key store's password (tests grep logs for it; nothing else needs it in Python)."""
    return (directory / KEYSTORE_PASSWORD_FILE).read_text(encoding="utf-8")


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to a new file only its owner may read (0600 from the start)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
