"""The local SolrCloud's security.json and password files, without Solr (see tests/solr)."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from clickagg.local import solr_security

pytestmark = pytest.mark.unit

# The Solr Reference Guide's own example: user solr, password SolrRocks.
GUIDE_SALT = "Ndd7LKvVBAaZIF0QAVi1ekCfAJXr1GGfLtRUXhgrF8c="
GUIDE_HASH = "IV0EHq1OnNrj6gvRCwvFwTrZ1+z1oBbnQdiVC3otuq0="


def test_a_credential_is_hashed_as_solr_hashes_it() -> None:
    credential = solr_security.hashed_credential("SolrRocks", base64.b64decode(GUIDE_SALT))
    assert credential == f"{GUIDE_HASH} {GUIDE_SALT}"


def test_create_writes_owner_only_files_and_no_password_into_security_json(
    tmp_path: Path,
) -> None:
    security = solr_security.create(tmp_path / "auth")
    credentials = tmp_path / "auth" / solr_security.CREDENTIALS_FILE
    for path in (security, credentials):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((tmp_path / "auth").stat().st_mode) == 0o700
    text = security.read_text()
    config = json.loads(text)
    for role in solr_security.ROLES:
        user, password = solr_security.credentials(tmp_path / "auth", role)
        assert user == solr_security.USERS[role]
        assert len(password) >= 32
        assert password not in text
        hashed, salt = config["authentication"]["credentials"][user].split(" ")
        assert solr_security.hashed_credential(password, base64.b64decode(salt)) == (
            f"{hashed} {salt}"
        )
        assert config["authorization"]["user-role"][user] == [role]
    assert config["authentication"]["blockUnknown"] is True


def test_each_start_gets_new_passwords(tmp_path: Path) -> None:
    solr_security.create(tmp_path)
    first = solr_security.credentials(tmp_path, solr_security.JOBS)
    solr_security.create(tmp_path)
    assert solr_security.credentials(tmp_path, solr_security.JOBS) != first


def test_roles_grant_what_each_component_needs_and_no_more() -> None:
    granted = dict(solr_security.PERMISSIONS)
    # Solr 9's predefined names (PermissionNameProvider.Name); `all` must come last.
    assert list(granted)[-1] == "all"
    assert solr_security.QUERY not in granted["update"]
    assert solr_security.JOBS not in granted["collection-admin-edit"]
    assert solr_security.QUERY in granted["read"]
    assert {solr_security.OPERATOR, solr_security.JOBS} <= set(granted["update"])
    for name in ("collection-admin-edit", "core-admin-edit", "config-edit", "security-edit"):
        assert granted[name] == [solr_security.OPERATOR], name


def test_credentials_of_a_stack_without_auth_say_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="--solr-auth"):
        solr_security.credentials(tmp_path, solr_security.QUERY)
