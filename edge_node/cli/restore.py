"""`chartsync edge restore`: a new machine gets every chart back from the hub.

    chartsync edge restore --data DIR --hub URL --token TOKEN --recovery-kit FILE
        (--passphrase-file F | --share FILE --share FILE ...) --name NAME
        [--snapshot ID] [--json]

1. Opens the recovery kit (passphrase, or any k of the custodians' shares).
2. Enrolls this machine as a new site of the practice with the token, and
   signs it into the practice roster with the kit (the kit's key is named in the
   roster).  A kit the roster no longer names (replaced) admits nobody: the site
   then waits, showing its fingerprint, until an approved site approves it.
   Every key epoch comes from the kit itself, the copies sealed to the kit at
   the hub, and the site's mailbox.
3. Downloads the latest verified snapshot (or `--snapshot ID`, one that
   `chartsync edge snapshots` lists), checks the making site's signature
   before writing anything and the bytes' digest before staging, stages and
   verifies it, installs it (progress bar with time left, or `--json` lines),
   sets the cursor; `edge serve` then pulls the log tail after it.

Interrupted (even killed), run the same command again: enrollment is not
repeated and the restore resumes from the staged snapshot.

With `--from-backup FILE` it instead brings the site back from its backup
file with no hub (`edge_node/cli/restore_backup.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from edge_node.cli import restore_backup
from edge_node.cli.command import EXIT_OK, add_data_option, fail, parser_for, wall_ms
from edge_node.cli.recovery_options import open_kit
from edge_node.errors import EdgeError
from edge_node.hub_link.client import HubClient, HubSettings
from edge_node.hub_link.errors import EnrollmentError
from edge_node.snapshots.bootstrap import restore_into
from edge_node.snapshots.progress import progress_for
from edge_node.snapshots.staging import BATCH_RECORDS
from edge_node.store.data_lock import data_dir_owner
from edge_node.store.schema import db_path
from edge_node.store.site import site_identity
from edge_node.store.sync_state import keep_keyring, merge_keyring
from edge_node.sync.enroll import enroll_site, settings_of
from edge_node.sync.kit_admission import admit_with_kit, keys_for_kit
from sync_protocol.keys import SiteDirectory


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "restore", help_text="bring every chart back from the hub",
                   description="Enroll this machine as a new site with a recovery kit and "
                   "restore every chart, all history and all open conflicts from the hub's "
                   "latest verified snapshot, or the one --snapshot names. The making site's "
                   "signature and the bytes' digest are checked before anything is written "
                   "or staged. Resumes if interrupted.",
                   examples="  chartsync edge restore --data /var/lib/chartsync --hub "
                   "https://hub.example.jp --token cse_... --recovery-kit kit.txt "
                   "--passphrase-file pass.txt --name branch-a\n"
                   "  chartsync edge restore --data DIR --hub URL --token cse_... "
                   "--recovery-kit kit.txt --share alice.txt --share bob.txt --name a --json\n"
                   "  chartsync edge restore --from-backup /mnt/usb/edge.csbackup --data NEWDIR "
                   "--site-key /safe/site.key --backup-passphrase-file pass.txt\n"
                   "  chartsync edge restore --from-backup FILE --data NEWDIR --site-key "
                   "site.key --recovery-kit kit.txt --share alice.txt --share bob.txt\n"
                   "  chartsync edge restore --data DIR --hub URL --token cse_... "
                   "--recovery-kit kit.txt --passphrase-file pass.txt --name a "
                   "--snapshot 0193a1c2-7d4e-4f10-9a3b-5c6d7e8f9a0b\n")
    add_data_option(p)
    p.add_argument("--hub", metavar="URL", help="the hub to restore from (not with "
                   "--from-backup)")
    p.add_argument("--token", help="one-time enrollment token (not needed to resume)")
    p.add_argument("--recovery-kit", type=Path, metavar="FILE")
    p.add_argument("--passphrase-file", type=Path, metavar="FILE")
    p.add_argument("--share", type=Path, action="append", default=[], metavar="FILE",
                   help="a custodian's share (repeat for k shares)")
    p.add_argument("--hub-ca", type=Path, metavar="FILE")
    p.add_argument("--insecure-http", action="store_true", help="loopback demos only")
    p.add_argument("--name", default="restored", help="site name shown to approvers")
    p.add_argument("--admin", default="admin", help="name of the first admin")
    p.add_argument("--approval-timeout-s", type=float, default=24 * 3600)
    p.add_argument("--snapshot", type=UUID, metavar="ID",
                   help="restore from this snapshot (an id `chartsync edge snapshots` "
                   "lists; default: the latest verified one)")
    p.add_argument("--json", action="store_true", help="JSON lines for progress and result")
    p.add_argument("--stage-batch-records", type=int, default=BATCH_RECORDS, metavar="N",
                   help="records per staging commit: smaller resumes closer to where a killed "
                   "restore stopped, larger loads faster (default %(default)s)")
    backup = p.add_argument_group("restore from a backup file, with no hub")
    backup.add_argument("--from-backup", type=Path, metavar="FILE",
                        help="a file written by `chartsync edge backup`; --data must be a new "
                        "directory")
    backup.add_argument("--site-key", type=Path, metavar="FILE",
                        help="the old data directory's site.key (kept apart from backups)")
    backup.add_argument("--backup-passphrase-file", type=Path, metavar="FILE",
                        help="the backup's passphrase (instead of the recovery kit)")
    p.set_defaults(handler=run)


def _say(args: argparse.Namespace, **fields: object) -> None:
    if args.json:
        print(json.dumps(fields), flush=True)
    else:
        print(" ".join(f"{k}: {v}" for k, v in fields.items()), flush=True)


async def wait_approved(client: HubClient, deadline_s: float) -> None:
    """Poll the hub until this site is approved; raises `EnrollmentError` at the deadline."""
    delay = 0.5
    end = time.monotonic() + deadline_s
    while (me := await client.me()).status != "approved":
        if me.status == "revoked" or time.monotonic() > end:
            raise EnrollmentError(f"site {me.site_id} is {me.status}",
                                  hint="an approved site (or the operator) must approve it")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)


async def restore(args: argparse.Namespace) -> int:
    opened = await asyncio.to_thread(open_kit, args)
    keyring = opened.keyring
    data_dir: Path = args.data
    if not db_path(data_dir).exists():
        if not args.token:
            raise EnrollmentError("a new restore needs --token", hint="ask the operator or "
                                  "an approved site for an enrollment token")
        settings = HubSettings.parse(args.hub, ca_file=args.hub_ca,
                                     insecure_http=args.insecure_http)
        result = await enroll_site(data_dir, settings, token=args.token, name=args.name,
                                   admin_name=args.admin, now_ms=wall_ms(),
                                   entropy=os.urandom, passphrase=None, shares=None,
                                   created=datetime.now(UTC).date().isoformat())
        if result.practice_id != keyring.practice_id:
            raise EnrollmentError(f"the token enrolls into practice {result.practice_id}, the "
                                  f"kit belongs to {keyring.practice_id}",
                                  hint="use a token of the kit's practice")
        _say(args, site=str(result.site_id), fingerprint=result.fingerprint,
             admin=result.admin.name, admin_token=result.admin_token)
    state = await asyncio.to_thread(keep_keyring, data_dir, keyring)
    site_id, site_keys = await asyncio.to_thread(site_identity, data_dir)
    async with HubClient.open(settings_of(state), credential=state.credential) as client:
        roster = await admit_with_kit(client, data_dir, practice_id=state.practice_id,
                                      site_id=site_id, site_keys=site_keys, kit=opened.keys,
                                      now_ms=wall_ms())
        await wait_approved(client, args.approval_timeout_s)
        for key in await keys_for_kit(client, state.practice_id, kit=opened.keys,
                                      roster=roster, site_id=site_id, site_keys=site_keys):
            keyring = keyring.with_key(key)
        keyring = await asyncio.to_thread(merge_keyring, data_dir, keyring)
        directory = (roster.directory() if roster is not None else
                     SiteDirectory(s.public_keys for s in await client.sites()))
        with progress_for(json_lines=args.json, clock=time.monotonic) as progress:
            staged = await restore_into(data_dir, client, keyring, directory, progress,
                                        batch_records=args.stage_batch_records,
                                        snapshot_id=args.snapshot)
    if staged is None:
        _say(args, restored="no snapshot", next="`edge serve` pulls the whole log")
    else:
        meta = staged.meta
        _say(args, restored=str(staged.header.snapshot_id), hub_seq=meta.position.hub_seq,
             resources=meta.resources, history=meta.history, conflicts=meta.conflicts,
             resumed_from_record=staged.resumed_from,
             next="`chartsync edge serve` pulls the changes after it")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    if args.from_backup is not None:
        return restore_backup.run(args)
    if args.hub is None or args.recovery_kit is None:
        print("error: a restore from the hub needs --hub and --recovery-kit (or restore from "
              "a backup file with --from-backup)", file=sys.stderr)
        return 2
    try:
        with data_dir_owner(args.data, "restore", create=True):
            return asyncio.run(restore(args))
    except EdgeError as err:
        return fail(err)
