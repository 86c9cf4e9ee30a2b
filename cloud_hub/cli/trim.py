"""`chartsync hub trim`: apply retention now (the hub also trims after each snapshot upload).

Only log that a *verified* snapshot covers goes: one whose making site's signature and
digest the hub checked at upload (`cloud_hub.api.snapshots`).  Unsigned snapshots kept
from before schema 4 never count (`cloud_hub.store.base.trim_point`).
"""

from __future__ import annotations

import argparse
import json
import sys
from uuid import UUID

from cloud_hub.cli.store_arg import EXIT_OK, EXIT_USAGE, add_store_arg, with_store
from cloud_hub.store.base import HubStore
from sync_protocol.ids import PracticeId

_EPILOG = """\
Only batches a verified snapshot covers are removed (signed by the site that made it and
checked at upload; an unsigned snapshot from an older hub never counts), and the latest
--keep stay in any case. A site whose cursor is older than what is left bootstraps from
the latest verified snapshot. The output shows each practice's latest verified snapshot
position: with none, nothing is trimmed.

examples:
  chartsync hub trim --store sqlite:/var/lib/chartsync/hub.db --keep 100000
  chartsync hub trim --store postgresql://hub@127.0.0.1/chartsync --keep 50000 \\
      --practice 01939f3c-5e2a-7c11-9a0b-3f0c2d4e5a6b --json
"""


def add_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "trim", help="delete old batches that a verified snapshot covers (retention)",
        description="Trim each practice's batch log to its latest --keep batches, never "
        "past its latest verified snapshot.", epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_store_arg(parser)
    parser.add_argument("--keep", type=int, required=True, metavar="N",
                        help="batches to keep per practice (at least 1; like "
                        "retention_batches)")
    parser.add_argument("--practice", metavar="ID", help="only this practice id")
    parser.add_argument("--json", action="store_true", help="stable JSON output")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.keep < 1:
        print("--keep: give at least 1 (example: --keep 100000)", file=sys.stderr)
        return EXIT_USAGE
    only: PracticeId | None = None
    if args.practice is not None:
        try:
            only = PracticeId(UUID(args.practice))
        except ValueError:
            print(f"--practice: {args.practice!r} is not a practice id "
                  "(example: --practice 01939f3c-5e2a-7c11-9a0b-3f0c2d4e5a6b)", file=sys.stderr)
            return EXIT_USAGE

    async def action(store: HubStore) -> list[dict[str, object]]:
        done = []
        for practice in await store.list_practices():
            if only is not None and practice.practice_id != only:
                continue
            through = await store.trim(practice.practice_id, args.keep)
            bounds = await store.log_bounds(practice.practice_id)
            verified = await store.latest_snapshot_info(practice.practice_id)
            done.append({"practice_id": str(practice.practice_id),
                         "trimmed_through": through, "head": bounds.head,
                         "verified_snapshot_hub_seq": verified.hub_seq if verified else None})
        return done

    code, result = with_store(args.store, action)
    if code != EXIT_OK or result is None:
        return code
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{'PRACTICE ID':36}  {'HEAD':>10}  {'TRIMMED THROUGH':>15}  VERIFIED SNAPSHOT AT")
        for row in result:
            covered = row["verified_snapshot_hub_seq"]
            print(f"{row['practice_id']!s:36}  {row['head']!s:>10}  "
                  f"{row['trimmed_through']!s:>15}  {'none' if covered is None else covered}")
    return EXIT_OK
