"""`chartsync edge snapshots --data DIR [--json]`: the snapshots the hub holds for the
practice, newest first, to pick one for `chartsync edge restore --snapshot ID`.

Each row: snapshot id, hub position (the log it covers, 1..hub_seq), when the hub
stored it (UTC), the site that made and signed it (id and name), size, key
epoch, and whether the hub still keeps every change after it (retention may
have trimmed them: a site restored from such a snapshot cannot pull the rest and
re-bootstraps from the latest one).  Only verified snapshots are listed: the
hub checked the making site's signature and the bytes' digest when it stored
them, and a restore checks both again before it writes anything.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import json
from pathlib import Path

from edge_node.cli.command import EXIT_OK, add_data_option, fail, parser_for
from edge_node.errors import EdgeError
from edge_node.hub_link.answers import HubSnapshot
from edge_node.hub_link.client import HubClient
from edge_node.store.connection import with_database
from edge_node.store.sync_state import require_sync_state
from edge_node.sync.enroll import settings_of


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "snapshots", help_text="the hub's snapshots of the practice",
                   description="List the verified snapshots the hub holds for this site's "
                   "practice, newest first: id, hub position, time, the site that made it, "
                   "size and key epoch. Restore from one with `chartsync edge restore ... "
                   "--snapshot ID`.",
                   examples="  chartsync edge snapshots --data /var/lib/chartsync\n"
                   "  chartsync edge snapshots --data /var/lib/chartsync --json\n")
    add_data_option(p)
    p.add_argument("--json", action="store_true", help="stable JSON output")
    p.set_defaults(handler=run)


async def hub_snapshots(data_dir: Path) -> tuple[list[HubSnapshot], dict[str, str]]:
    """The hub's verified snapshots (newest first) and the practice's site names by id."""
    state = await asyncio.to_thread(with_database, data_dir,
                                    functools.partial(require_sync_state, data_dir=data_dir))
    async with HubClient.open(settings_of(state), credential=state.credential) as hub:
        found = await hub.list_snapshots()
        names = {str(s.site_id): s.name for s in await hub.sites()}
    return found, names


def _row(s: HubSnapshot, names: dict[str, str]) -> dict[str, object]:
    return {"snapshot_id": str(s.snapshot_id), "hub_seq": s.hub_seq,
            "created_ms": s.created_ms, "site_id": str(s.site_id),
            "site_name": names.get(str(s.site_id)), "size_bytes": s.size,
            "key_epoch": s.key_epoch, "log_after_kept": s.log_after_kept}


def run(args: argparse.Namespace) -> int:
    try:
        found, names = asyncio.run(hub_snapshots(args.data))
    except EdgeError as err:
        return fail(err)
    rows = [_row(s, names) for s in found]
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    if not rows:
        print("the hub holds no verified snapshot of this practice yet (a syncing site "
              "uploads one every `snapshot_every_changes` changes)")
        return EXIT_OK
    print(f"{'SNAPSHOT ID':36}  {'HUB SEQ':>8}  {'STORED (UTC)':16}  {'SIZE':>10}  "
          f"{'EPOCH':>5}  {'LOG AFTER':9}  SITE")
    for r, s in zip(rows, found, strict=True):
        when = dt.datetime.fromtimestamp(s.created_ms / 1000, dt.UTC)
        print(f"{r['snapshot_id']!s:36}  {s.hub_seq:>8}  {when:%Y-%m-%d %H:%M}  "
              f"{_size(s.size):>10}  {s.key_epoch:>5}  "
              f"{'kept' if s.log_after_kept else 'trimmed':9}  "
              f"{r['site_name'] or '?'} ({s.site_id})")
    if not all(s.log_after_kept for s in found):
        print("LOG AFTER trimmed: the hub no longer holds every change after that snapshot; "
              "a site restored from it re-bootstraps from the latest one")
    return EXIT_OK


def _size(n: int) -> str:
    value, unit = float(n), "B"
    for bigger in ("KiB", "MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
