"""Staff accounts: names, roles and hashed bearer tokens.

A token is 32 random bytes, base64url, shown once by `edge user add`.  Only its
SHA-256 is stored: a high-entropy token needs no slow hash, and lookups by hash
keep authentication to one indexed query.  Comparison is constant-time.

An account is disabled (`edge user disable`) when its holder leaves or its token
may have leaked; `edge user token` replaces a token (the old one stops working).
Rows are never deleted: audit and history rows keep naming the account.  A
running edge re-checks an account at most `ACCOUNT_RECHECK_S` after it last
looked it up (`edge_node.api.auth`).

Roles and what they may do (enforced in `edge_node.api.auth`):

    clinician  read and write every chart resource
    clerk      read every chart resource; write Patient and Encounter
    admin      everything a clinician may, plus GET /audit
    auditor    GET /audit and GET /status only; no chart data
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import sqlite3
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from edge_node.errors import StoreError
from edge_node.store.account_events import record_account_event
from edge_node.store.transaction import savepoint, write_transaction
from sync_protocol.ids import UserId, uuid7

TOKEN_BYTES: Final = 32


class Role(StrEnum):
    CLINICIAN = "clinician"
    CLERK = "clerk"
    ADMIN = "admin"
    AUDITOR = "auditor"


@dataclass(frozen=True, slots=True)
class User:
    """An authenticated account (never holds the token)."""

    user_id: UserId
    name: str
    role: Role


def token_hash(token: str) -> bytes:
    """SHA-256 of the token text."""
    return hashlib.sha256(token.encode("ascii", "replace")).digest()


def make_token(random_bytes: bytes) -> str:
    """The token text for 32 random bytes."""
    if len(random_bytes) < TOKEN_BYTES:
        raise ValueError("a token needs 32 random bytes")
    return base64.urlsafe_b64encode(random_bytes[:TOKEN_BYTES]).rstrip(b"=").decode("ascii")


#: Who made an account change, when no person is named (`edge init`, tests, benchmarks).
BY_SETUP: Final = "setup"


def add_user(conn: sqlite3.Connection, *, name: str, role: Role, now_ms: int,
             random_bytes: bytes, by_whom: str = BY_SETUP) -> tuple[User, str]:
    """Create an account; return it and its token (shown once, never stored).

    `random_bytes`: 42 bytes (10 for the id, 32 for the token).  Raises
    `StoreError` if the name is taken.  The change is audited (`store.account_events`)
    as made by `by_whom`.
    """
    if not name or len(name) > 128:
        raise StoreError("a user name is 1-128 characters", hint="pick a shorter name")
    user_id = UserId(str(uuid7(now_ms, random_bytes[:10])))
    token = make_token(random_bytes[10:])
    with savepoint(conn, "account_change"):
        try:
            conn.execute(
                "INSERT INTO users (id, name, role, token_hash, created_ms) "
                "VALUES (?, ?, ?, ?, ?)", (user_id, name, role.value, token_hash(token), now_ms))
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"a user named {name!r} already exists",
                             hint="choose another name") from exc
        record_account_event(conn, action="add", account_id=user_id, role=role.value,
                             now_ms=now_ms, by_whom=by_whom)
    return User(user_id, name, role), token


@dataclass(frozen=True, slots=True)
class Account:
    """An account as `edge user list` shows it (never its token)."""

    user_id: UserId
    name: str
    role: Role
    created_ms: int
    disabled: bool


def list_accounts(conn: sqlite3.Connection) -> list[Account]:
    """Every account, enabled or not, by name."""
    return [Account(UserId(r[0]), r[1], Role(r[2]), r[3], bool(r[4])) for r in conn.execute(
        "SELECT id, name, role, created_ms, disabled FROM users ORDER BY name")]


def _account(conn: sqlite3.Connection, name: str) -> Account:
    for account in list_accounts(conn):
        if account.name == name:
            return account
    raise StoreError(f"there is no user named {name!r}",
                     hint="`chartsync edge user list` shows the accounts of this edge")


def set_disabled(conn: sqlite3.Connection, name: str, *, disabled: bool, now_ms: int,
                 by_whom: str = BY_SETUP) -> Account:
    """Disable (or enable again) the account `name`; return it as it now is.

    Raises `StoreError` for an unknown name, or when disabling the last enabled admin
    (nobody could read the audit log or manage the site any more).  Audited.
    """
    with write_transaction(conn):  # the last-admin check and the update, together
        account = _account(conn, name)
        if disabled and account.role is Role.ADMIN and not account.disabled:
            admins = sum(1 for a in list_accounts(conn)
                         if a.role is Role.ADMIN and not a.disabled)
            if admins == 1:
                raise StoreError(f"{name!r} is the last enabled admin of this edge",
                                 hint="add another admin first (`chartsync edge user add "
                                 "NAME --role admin`), then disable this one")
        conn.execute("UPDATE users SET disabled = ? WHERE id = ?",
                     (int(disabled), account.user_id))
        record_account_event(conn, action="disable" if disabled else "enable",
                             account_id=account.user_id, role=account.role.value,
                             now_ms=now_ms, by_whom=by_whom)
    return Account(account.user_id, account.name, account.role, account.created_ms, disabled)


def replace_token(conn: sqlite3.Connection, name: str, *, random_bytes: bytes, now_ms: int,
                  by_whom: str = BY_SETUP) -> tuple[Account, str]:
    """A new token for the account `name` (the old one stops working); shown once.

    `random_bytes`: 32 bytes.  Raises `StoreError` for an unknown or disabled account.
    Audited.
    """
    with savepoint(conn, "account_change"):
        account = _account(conn, name)
        if account.disabled:
            raise StoreError(f"the account {name!r} is disabled",
                             hint=f"enable it first: `chartsync edge user enable {name}`")
        token = make_token(random_bytes)
        conn.execute("UPDATE users SET token_hash = ? WHERE id = ?",
                     (token_hash(token), account.user_id))
        record_account_event(conn, action="token", account_id=account.user_id,
                             role=account.role.value, now_ms=now_ms, by_whom=by_whom)
    return account, token


def user_from_row(row: tuple[str, str, str, bytes], token: str) -> User | None:
    """The user of a `users` row fetched by token hash, after a constant-time check."""
    user_id, name, role, stored = row
    if not hmac.compare_digest(stored, token_hash(token)):
        return None
    return User(UserId(user_id), name, Role(role))


USER_BY_HASH: Final = (
    "SELECT id, name, role, token_hash FROM users WHERE token_hash = ? AND disabled = 0"
)
