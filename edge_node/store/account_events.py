"""Console events (account changes, backups) into the audit chain.

`chartsync edge user ...` runs in its own process while `edge serve` usually
runs and owns the audit chain's head in memory: appending to `audit` from the
command would fork the chain.  So the command records an event row in
`account_events`, in the same transaction as the account change itself, and
the chain's owner seals the pending events into `audit` and deletes them in
one transaction: the serving writer with every group commit, and any opening
of the data directory (`edge_node.node`) before the writer starts.  An event
is therefore never lost and never chained twice; it reaches `GET /audit` with
the next group commit (the audit query makes one first).

Events carry the account's id and role and the operating-system user who ran
the command (`by_whom`), never a token.  A backup (`chartsync edge backup`, an
export of every chart) is recorded the same way: action `export`, with the backup
file's name in place of the account and "all patients" as what it covers.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Final, Literal

from edge_node.store.audit import INSERT_AUDIT, AuditChain, AuditRecord
from edge_node.store.transaction import write_transaction

AccountAction = Literal["add", "disable", "enable", "token"]
#: The action column of a backup event (the account column holds the file's name).
_BACKUP: Final = "backup"
#: The role an account change is audited under (a person at the server's console).
OPERATOR_ROLE: Final = "operator"
_PENDING: Final = "SELECT id, at_ms, action, account, role, by_whom FROM account_events ORDER BY id"


def record_account_event(conn: sqlite3.Connection, *, action: AccountAction, account_id: str,
                         role: str, now_ms: int, by_whom: str) -> None:
    """Queue one account change for the audit chain (inside the change's transaction)."""
    conn.execute("INSERT INTO account_events (at_ms, action, account, role, by_whom) "
                 "VALUES (?, ?, ?, ?, ?)", (now_ms, action, account_id, role, by_whom))


def record_backup_event(conn: sqlite3.Connection, *, file_name: str, encrypted: bool,
                        now_ms: int, by_whom: str) -> None:
    """Queue the audit record of a backup written to `file_name` (its own transaction)."""
    with write_transaction(conn):
        conn.execute("INSERT INTO account_events (at_ms, action, account, role, by_whom) "
                     "VALUES (?, ?, ?, ?, ?)", (now_ms, _BACKUP, file_name,
                                                "encrypted" if encrypted else "plaintext",
                                                by_whom))


def _record(at_ms: Any, action: str, account: Any, role: Any, by_whom: Any) -> AuditRecord:
    if action == _BACKUP:
        return AuditRecord(at_ms=int(at_ms), user=str(by_whom), role=OPERATOR_ROLE,
                           action="export", resource_type=None, resource_id=None,
                           patient_ref=None, outcome=200, client="local",
                           detail={"backup": str(account), "form": str(role),
                                   "patients": "all"})
    return AuditRecord(at_ms=int(at_ms), user=str(by_whom), role=OPERATOR_ROLE,
                       action=f"account-{action}", resource_type=None, resource_id=None,
                       patient_ref=None, outcome=200, client="local",
                       detail={"account": str(account), "account_role": str(role)})


def chain_account_events(conn: sqlite3.Connection, chain: AuditChain) -> int:
    """Seal the pending events into `audit` after `chain`'s head and delete them.

    Runs inside the caller's transaction, on the chain owner's connection; advances
    `chain` (the caller puts it back if the transaction rolls back).  Returns how many.
    """
    pending = conn.execute(_PENDING).fetchall()
    if not pending:
        return 0
    records = [_record(at_ms, action, account, role, by_whom)
               for _, at_ms, action, account, role, by_whom in pending]
    rows: list[tuple[Any, ...]] = chain.seal(records)
    conn.executemany(INSERT_AUDIT, rows)
    conn.execute("DELETE FROM account_events WHERE id <= ?", (int(pending[-1][0]),))
    return len(rows)


__all__ = ["OPERATOR_ROLE", "AccountAction", "chain_account_events", "record_account_event",
           "record_backup_event"]
