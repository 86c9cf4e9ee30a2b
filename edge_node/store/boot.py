"""What the writer needs to start: the site, the next outbox sequence, the last HLC, the chain.

    boot = load_boot(data_dir)     # blocking; `Edge.open` runs it in a thread

Read once, before the writer's connection opens, on a command connection
(`open_sync`: the schema version is checked read-only first, then migrated).
The next sequence number follows both this site's history and its outbox
(a change is in the outbox before the history row of a remote echo); the HLC
starts after every history row, this site's and the others'.  Account changes
made while no writer ran (`edge user ...`) are chained into the audit log
here, in one transaction, so the writer starts on a complete chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge_node.store.account_events import chain_account_events
from edge_node.store.audit import AuditChain
from edge_node.store.connection import open_sync
from edge_node.store.file_modes import tighten_data_dir
from edge_node.store.site import Site, load_site
from edge_node.store.transaction import write_transaction


@dataclass(frozen=True, slots=True)
class Boot:
    """The state a `Writer` starts from."""

    site: Site
    next_seq: int
    last_hlc: int
    chain: AuditChain


def load_boot(data_dir: Path) -> Boot:
    """Read the writer's starting state; raises `StoreError` / `SchemaTooNew`."""
    tighten_data_dir(data_dir)
    conn = open_sync(data_dir)
    try:
        site = load_site(conn, data_dir)
        row = conn.execute("SELECT max(seq), max(hlc) FROM history WHERE origin = ?",
                           (str(site.site_id),)).fetchone()
        any_hlc = conn.execute("SELECT max(hlc) FROM history").fetchone()[0] or 0
        out_max = conn.execute("SELECT max(seq) FROM outbox").fetchone()[0] or 0
        next_seq = max(row[0] or 0, out_max) + 1
        with write_transaction(conn):  # account changes made while no writer ran
            chain = AuditChain.load(conn)
            chain_account_events(conn, chain)
        return Boot(site, next_seq, max(row[1] or 0, any_hlc), chain)
    finally:
        conn.close()


__all__ = ["Boot", "load_boot"]
