"""The edge node as one object: its store opened, its writer running, its site known.

    async with Edge.open(config, clock=..., entropy=...) as edge:
        ...  # edge.writer, edge.reader, edge.site

`init_data_dir` creates a data directory (`chartsync edge init`).  Opening
checks the schema version read-only first (a newer file is refused untouched),
then runs migrations, loads the site, the next outbox sequence number, the HLC
and the audit chain head (`store.boot`), and starts the group-commit writer in
a TaskGroup.  Time (`clock`, ms) and randomness (`entropy(n)`) are inputs.
Every database step is the store's; this module only puts the pieces together.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from edge_node.config import EdgeConfig
from edge_node.errors import StoreError
from edge_node.store.boot import load_boot
from edge_node.store.connection import WriteConnection
from edge_node.store.file_modes import make_private_dir, tighten_data_dir
from edge_node.store.reads import Reader
from edge_node.store.schema import db_path
from edge_node.store.site import Site, create_site_database, new_site_id, write_key_file
from edge_node.store.users import User
from edge_node.store.writer import Writer
from sync_protocol.hlc import HybridClock
from sync_protocol.ids import SiteId
from sync_protocol.keys import SiteKeyPair

Clock = Callable[[], int]
Entropy = Callable[[int], bytes]


def init_data_dir(data_dir: Path, *, now_ms: int, entropy: Entropy, admin_name: str,
                  site_id: SiteId | None = None, keys: SiteKeyPair | None = None,
                  practice_id: UUID | None = None) -> tuple[Site, User, str]:
    """Create a data directory: database, site id and keys, and a first admin.

    Returns the site, the admin and the admin's token (show it once).  Raises
    `StoreError` if the directory already holds an edge database.  A site
    enrolled with a hub passes the `site_id` the hub assigned to its `keys`
    and the `practice_id` it joined.
    """
    make_private_dir(data_dir)
    path = db_path(data_dir)
    if path.exists():
        raise StoreError(f"{path} already exists",
                         hint="this directory is initialised; use `chartsync edge serve`")
    file_key = entropy(32)
    write_key_file(data_dir, file_key)
    site_id = site_id if site_id is not None else new_site_id(now_ms, entropy(10))
    keys = keys if keys is not None else SiteKeyPair.generate(entropy(64))
    nonce = entropy(24)
    made = create_site_database(data_dir, path, site_id=site_id, created_ms=now_ms, keys=keys,
                                file_key=file_key, nonce=nonce, practice_id=practice_id,
                                admin_name=admin_name, admin_random=entropy(42))
    tighten_data_dir(data_dir)
    return made


@dataclass(slots=True)
class Edge:
    """A running edge: site identity, writer and reader of one data directory."""

    config: EdgeConfig
    site: Site
    writer: Writer
    reader: Reader
    clock: Clock
    entropy: Entropy

    @classmethod
    @asynccontextmanager
    async def open(cls, config: EdgeConfig, *, clock: Clock, entropy: Entropy
                   ) -> AsyncIterator[Edge]:
        """Open the data directory and run its writer until the block exits.

        Raises `StoreError` / `SchemaTooNew` before touching a file it cannot use.
        Leaving the block commits everything queued, then closes the store.
        """
        boot = await asyncio.to_thread(load_boot, config.data_dir)
        path = db_path(config.data_dir)
        async with WriteConnection.open(path) as conn:
            writer = Writer(conn, site_id=boot.site.site_id, next_seq=boot.next_seq,
                            hlc=HybridClock(boot.last_hlc), chain=boot.chain, clock=clock,
                            max_group_ops=config.max_group_ops,
                            require_if_match=config.require_if_match)
            async with Reader.open(path, config.read_connections) as reader, \
                    asyncio.TaskGroup() as tg:
                tg.create_task(writer.run())
                try:
                    yield cls(config, boot.site, writer, reader, clock, entropy)
                finally:
                    writer.stop()


__all__ = ["Clock", "Edge", "Entropy", "init_data_dir"]
