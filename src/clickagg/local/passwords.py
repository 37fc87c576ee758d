"""Generated passwords of the local engines' users, kept owner-only (0600) in a directory.

`generate` writes `credentials.json` (every role's user and password) and `<role>.password`
(one password alone, as a mounted Secret file holds it, for `$CLICKAGG_*_PASSWORD_FILE`).
Shared by the SolrCloud's (`solr_security`) and Kafka's (`kafka_security`) users; nothing
here prints or logs a password.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from clickagg import errors

CREDENTIALS_FILE = "credentials.json"
_PASSWORD_BYTES = 24


def generate(directory: Path, users: Mapping[str, str]) -> dict[str, str]:
    """A fresh password for every role of `users` (role -> user name), stored in
    `directory`; role -> password."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    passwords = {role: secrets.token_urlsafe(_PASSWORD_BYTES) for role in users}
    stored = {role: {"user": users[role], "password": passwords[role]} for role in users}
    write_private(directory / CREDENTIALS_FILE, json.dumps(stored, indent=2))
    for role in users:
        write_private(password_file(directory, role), passwords[role])
    return passwords


def password_file(directory: Path, role: str) -> Path:
    """The file that holds only `role`'s password (what a mounted Secret file looks like)."""
    return directory / f"{role}.password"


def read(
    directory: Path, role: str, roles: tuple[str, ...], engine: str, hint: str
) -> tuple[str, str]:
    """(user, password) of `role` as `generate` stored them; `hint` says how to get them."""
    if role not in roles:
        raise errors.LocalStackError(f"no {engine} role {role!r}: roles are {', '.join(roles)}")
    path = directory / CREDENTIALS_FILE
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise errors.LocalStackError(
            f"no {engine} credentials in {path}: {hint} ({type(exc).__name__})"
        ) from None
    entry = stored[role]
    return str(entry["user"]), str(entry["password"])


def write_private(path: Path, text: str) -> None:
    """Write `text` to a new file only its owner may read (0600 from the start)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
