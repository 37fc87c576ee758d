"""Solr basic-auth credentials, read from the environment in this one place.

A component (operator, job, service, CLI) finds its Solr user and password in its own
environment, which Kubernetes fills from a Secret (`valueFrom.secretKeyRef`) or a mounted
Secret file; they never travel as arguments. `$CLICKAGG_SOLR_USERNAME` names the user, and the
password is `$CLICKAGG_SOLR_PASSWORD` or the content of the file `$CLICKAGG_SOLR_PASSWORD_FILE`
names. Neither set: no credentials (a Solr without authentication).

`SolrCredentials` never shows its password: not in repr, str or an error message.

TLS: `$CLICKAGG_SOLR_CA_FILE` names a PEM file of the CA certificates a Solr served over
https is verified against (a mounted Secret or ConfigMap key, or the local SolrCloud's
`ca.crt`); unset, the system's CAs. Verification is never turned off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from clickagg import errors

USERNAME_ENV = "CLICKAGG_SOLR_USERNAME"
PASSWORD_ENV = "CLICKAGG_SOLR_PASSWORD"  # noqa: S105 (the variable's name, not a secret)
PASSWORD_FILE_ENV = "CLICKAGG_SOLR_PASSWORD_FILE"  # noqa: S105 (a name)
CA_FILE_ENV = "CLICKAGG_SOLR_CA_FILE"


@dataclass(frozen=True)
class SolrCredentials:
    """A Solr user and its password; the password is left out of every rendering."""

    user: str
    password: str = field(repr=False)

    def __str__(self) -> str:
        return self.user

    def pair(self) -> tuple[str, str]:
        """(user, password), as HTTP basic auth takes them."""
        return self.user, self.password


def from_environment(environ: Mapping[str, str] = os.environ) -> SolrCredentials | None:
    """The credentials the environment names, or None when it names none."""
    user = environ.get(USERNAME_ENV, "").strip()
    password = environ.get(PASSWORD_ENV, "")
    password_file = environ.get(PASSWORD_FILE_ENV, "").strip()
    if not user:
        if password or password_file:
            raise errors.SolrAuthError(
                f"a Solr password is set (${PASSWORD_ENV} or ${PASSWORD_FILE_ENV}) "
                f"but no user: set ${USERNAME_ENV}"
            )
        return None
    if not password and password_file:
        try:
            password = Path(password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise errors.SolrAuthError(
                f"cannot read the Solr password of user '{user}' from ${PASSWORD_FILE_ENV} "
                f"({password_file}): {exc.strerror}",
                user=user,
            ) from None
    if not password:
        raise errors.SolrAuthError(
            f"Solr user '{user}' is set (${USERNAME_ENV}) but no password: set "
            f"${PASSWORD_ENV} or ${PASSWORD_FILE_ENV}",
            user=user,
        )
    return SolrCredentials(user, password)


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
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise errors.SolrTlsError(
            f"cannot read the Solr CA bundle {path} (${CA_FILE_ENV}): {exc.strerror}"
        ) from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise errors.SolrTlsError(
            f"the Solr CA bundle {path} (${CA_FILE_ENV}) holds no PEM certificate"
        )
    return path
