"""`chartsync edge backup --data DIR --to FILE`: consistent online copy, encrypted by default.

    chartsync edge backup --data DIR --to FILE [--passphrase-file F] [--plaintext]

Sealed to the recovery kit its verified practice roster names (an enrolled site), and to a
passphrase when `--passphrase-file` is given; with neither, refused (pass
`--passphrase-file`, or `--plaintext` for an unencrypted SQLite copy).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_node.cli.command import (
    EXIT_OK,
    add_data_option,
    fail,
    os_user,
    parser_for,
    wall_ms,
)
from edge_node.errors import EdgeError, StoreError
from edge_node.store.backup import backup, backup_encrypted, backup_kit_key
from edge_node.store.connection import with_database
from sync_protocol.backup_file import KitSlot, PassphraseSlot, Slot
from sync_protocol.recovery import MIN_PASSPHRASE_CHARS

EXIT_USAGE = 2


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "backup", help_text="consistent online backup, encrypted by default",
                   description="Copy the live database with SQLite's online backup API "
                   "(safe while the server runs) and encrypt it: it opens with the practice's "
                   "recovery kit (an enrolled site: the kit its practice roster names) or with "
                   "the passphrase in "
                   "--passphrase-file (at least 13 characters). Restore it with `chartsync "
                   "edge restore --from-backup`. Keep DIR/site.key apart from the backups: "
                   "restoring needs it, and the copy holds the site keys sealed under it.",
                   examples="  chartsync edge backup --data DIR --to /mnt/usb/edge.csbackup "
                   "--passphrase-file /root/backup-pass.txt\n"
                   "  chartsync edge backup --data DIR --to /mnt/usb/edge.csbackup   "
                   "# recovery kit only\n"
                   "  chartsync edge backup --data DIR --to /mnt/enc/edge.sqlite3 --plaintext\n")
    add_data_option(p)
    p.add_argument("--to", type=Path, required=True, metavar="FILE")
    p.add_argument("--passphrase-file", type=Path, metavar="FILE",
                   help="file holding a passphrase that opens the backup (besides the kit)")
    p.add_argument("--plaintext", action="store_true",
                   help="write an unencrypted SQLite copy (`edge check` reads it directly); "
                   "keep it on encrypted media")
    p.set_defaults(handler=run)


def _slots(args: argparse.Namespace) -> list[Slot]:
    slots: list[Slot] = []
    kit = with_database(args.data, backup_kit_key)
    if kit is not None:
        slots.append(KitSlot(kit))
    if args.passphrase_file is not None:
        try:
            passphrase = args.passphrase_file.read_text(encoding="utf-8").rstrip("\n")
        except OSError as exc:
            raise StoreError(f"cannot read {args.passphrase_file}: {exc.strerror}",
                             hint="check the --passphrase-file path") from exc
        if len(passphrase) < MIN_PASSPHRASE_CHARS:
            raise StoreError(f"the passphrase in {args.passphrase_file} has {len(passphrase)} "
                             f"characters; a backup passphrase needs at least "
                             f"{MIN_PASSPHRASE_CHARS}",
                             hint="write a longer one (mix letters, digits and symbols)")
        slots.append(PassphraseSlot(passphrase))
    if not slots:
        raise StoreError(f"{args.data}: this site knows no recovery kit to seal the backup to, "
                         "and no passphrase was given",
                         hint="pass --passphrase-file FILE (a passphrase of 13 or more "
                         "characters, kept apart from the backup), or --plaintext for an "
                         "unencrypted copy")
    return slots


def run(args: argparse.Namespace) -> int:
    if args.plaintext and args.passphrase_file is not None:
        print("error: --plaintext writes no encryption; drop --passphrase-file or --plaintext",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.plaintext:
            target = backup(args.data, args.to, now_ms=wall_ms(), by_whom=os_user())
            print(f"plaintext backup written to {target} (keep it on encrypted media)")
            return EXIT_OK
        slots = _slots(args)
        written = backup_encrypted(args.data, args.to, slots, now_ms=wall_ms(),
                                   by_whom=os_user())
    except EdgeError as err:
        return fail(err)
    opens = [f"recovery kit {s.kit.fingerprint}" if isinstance(s, KitSlot) else "its passphrase"
             for s in slots]
    print(f"encrypted backup written to {written.path} ({written.file_bytes} bytes); opens "
          f"with {' or '.join(opens)}; restoring also needs {args.data / 'site.key'}")
    return EXIT_OK
