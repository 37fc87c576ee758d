"""Solr credentials from the environment: read in one place, never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from clickagg import errors
from clickagg.store import credentials

pytestmark = pytest.mark.unit

SECRET = "s3cr3t-never-shown"  # noqa: S105 (a test value)


def test_no_variables_mean_no_credentials() -> None:
    assert credentials.from_environment({}) is None


def test_user_and_password_from_variables() -> None:
    found = credentials.from_environment(
        {credentials.USERNAME_ENV: "clickagg-jobs", credentials.PASSWORD_ENV: SECRET}
    )
    assert found is not None
    assert found.pair() == ("clickagg-jobs", SECRET)
    assert SECRET not in repr(found)
    assert SECRET not in str(found)


def test_password_from_a_mounted_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "password"
    secret_file.write_text(SECRET + "\n")
    found = credentials.from_environment(
        {credentials.USERNAME_ENV: "u", credentials.PASSWORD_FILE_ENV: str(secret_file)}
    )
    assert found is not None
    assert found.password == SECRET


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({credentials.USERNAME_ENV: "u"}, "no password"),
        ({credentials.PASSWORD_ENV: SECRET}, "no user"),
        (
            {credentials.USERNAME_ENV: "u", credentials.PASSWORD_FILE_ENV: "/nonexistent/pw"},
            "cannot read",
        ),
    ],
)
def test_incomplete_credentials_say_what_is_missing(environ: dict[str, str], expected: str) -> None:
    with pytest.raises(errors.SolrAuthError, match=expected) as caught:
        credentials.from_environment(environ)
    assert SECRET not in str(caught.value)


def test_no_ca_variable_means_the_system_cas() -> None:
    assert credentials.ca_file_from_environment({}) is None
    assert credentials.ca_file_from_environment({credentials.CA_FILE_ENV: " "}) is None


def test_the_ca_variable_names_a_pem_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.crt"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    assert credentials.ca_file_from_environment({credentials.CA_FILE_ENV: str(bundle)}) == bundle


@pytest.mark.parametrize("content", [None, "not a certificate"])
def test_a_ca_variable_naming_no_certificate_is_a_tls_error(
    tmp_path: Path, content: str | None
) -> None:
    bundle = tmp_path / "ca.crt"
    if content is not None:
        bundle.write_text(content)
    with pytest.raises(errors.SolrTlsError) as caught:
        credentials.ca_file_from_environment({credentials.CA_FILE_ENV: str(bundle)})
    assert credentials.CA_FILE_ENV in str(caught.value)
    assert str(bundle) in str(caught.value)
