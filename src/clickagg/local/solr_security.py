"""BasicAuth and rule-based authorization for the local SolrCloud: users, passwords, security.json.

`create(directory)` generates one password per role, writes them to `credentials.json` (and
each alone to `<role>.password`, for `$CLICKAGG_SOLR_PASSWORD_FILE`) and the matching
`security.json` (password hashes only) into `directory`, all readable by the owner only (0600);
the launcher uploads `security.json` to ZooKeeper before the first node starts.
Nothing here prints or logs a password: callers read one with `credentials(directory, role)`.

Three roles, one user each:

- `operator` (clickagg-operator): collections, configsets and schemas (create, delete, upload),
  plus everything the others may do;
- `jobs` (clickagg-jobs): read and update the collections' documents;
- `query` (clickagg-query): read only (the KPI service).

The security.json format and the permission names are Solr 9's (`solr.BasicAuthPlugin`,
`solr.RuleBasedAuthorizationPlugin`, the predefined names of
`org.apache.solr.security.PermissionNameProvider.Name`). A credential is
`base64(sha256(sha256(salt + password))) + " " + base64(salt)` with a 32-byte salt, as
`Sha256AuthenticationProvider.getSaltedHashedValue` computes it. Nodes call each other with
Solr's PKI authentication, which is on whenever an authentication plugin is: no inter-node
credentials are configured.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clickagg.local import passwords

OPERATOR = "operator"
JOBS = "jobs"
QUERY = "query"
ROLES = (OPERATOR, JOBS, QUERY)
USERS = {OPERATOR: "clickagg-operator", JOBS: "clickagg-jobs", QUERY: "clickagg-query"}
CREDENTIALS_FILE = passwords.CREDENTIALS_FILE
SECURITY_FILE = "security.json"
_SALT_BYTES = 32
_EVERYONE = [OPERATOR, JOBS, QUERY]

# First match wins, so the narrow permissions come first and `all` last.
PERMISSIONS: tuple[tuple[str, list[str]], ...] = (
    ("security-edit", [OPERATOR]),
    ("security-read", [OPERATOR]),
    ("health", _EVERYONE),
    ("collection-admin-edit", [OPERATOR]),
    ("collection-admin-read", _EVERYONE),
    ("core-admin-edit", [OPERATOR]),
    ("core-admin-read", [OPERATOR]),
    ("config-edit", [OPERATOR]),
    ("config-read", _EVERYONE),
    ("schema-edit", [OPERATOR]),
    ("schema-read", _EVERYONE),
    ("update", [OPERATOR, JOBS]),
    ("read", _EVERYONE),
    ("metrics-read", [OPERATOR]),
    ("zk-read", [OPERATOR]),
    ("all", [OPERATOR]),
)


def hashed_credential(password: str, salt: bytes) -> str:
    """Solr's stored form of `password` with `salt` (Sha256AuthenticationProvider's)."""
    once = hashlib.sha256(salt + password.encode("utf-8")).digest()
    twice = hashlib.sha256(once).digest()
    return f"{base64.b64encode(twice).decode()} {base64.b64encode(salt).decode()}"


def security_json(passwords: Mapping[str, str]) -> dict[str, Any]:
    """The security.json for one password per role (`passwords[role]`)."""
    return {
        "authentication": {
            "class": "solr.BasicAuthPlugin",
            "blockUnknown": True,
            "forwardCredentials": False,
            "realm": "clickagg",
            "credentials": {
                USERS[role]: hashed_credential(passwords[role], secrets.token_bytes(_SALT_BYTES))
                for role in ROLES
            },
        },
        "authorization": {
            "class": "solr.RuleBasedAuthorizationPlugin",
            "user-role": {USERS[role]: [role] for role in ROLES},
            "permissions": [{"name": name, "role": roles} for name, roles in PERMISSIONS],
        },
    }


def create(directory: Path) -> Path:
    """Fresh passwords for every role into `directory`; the security.json path."""
    passwords_by_role = passwords.generate(directory, USERS)
    security = directory / SECURITY_FILE
    passwords.write_private(security, json.dumps(security_json(passwords_by_role), indent=2))
    return security


def password_file(directory: Path, role: str) -> Path:
    """The file that holds only `role`'s password (what a mounted Secret file looks like)."""
    return passwords.password_file(directory, role)


def credentials(directory: Path, role: str) -> tuple[str, str]:
    """(user, password) of `role` as `create` stored them in `directory`."""
    return passwords.read(
        directory,
        role,
        ROLES,
        "Solr",
        "start the SolrCloud with authentication (`clickagg local up --solr --solr-auth`)",
    )
