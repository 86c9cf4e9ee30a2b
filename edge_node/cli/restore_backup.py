"""`chartsync edge restore --from-backup FILE`: a site back from its backup file, with no hub.

    chartsync edge restore --from-backup FILE --data NEWDIR --site-key OLD_SITE_KEY
        (--recovery-kit KIT (--passphrase-file F | --share F --share F ...)
         | --backup-passphrase-file F)

Opens the backup with the recovery kit or the backup's passphrase (a wrong one
is refused before anything is written), then `store.backup_install` decrypts,
checks and installs it: NEWDIR then holds `edge.sqlite3` and `site.key`, and
`chartsync edge serve --data NEWDIR` starts on it with every chart.  A
plaintext backup (`edge backup --plaintext`) needs no key options.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge_node.cli.command import EXIT_OK, fail
from edge_node.cli.recovery_options import open_kit
from edge_node.errors import BackupRefused, EdgeError, StoreError
from edge_node.store.backup_install import install_backup, read_backup_header
from sync_protocol.backup_file import BackupHeader, unlock_with_kit, unlock_with_passphrase
from sync_protocol.errors import ProtocolError
from sync_protocol.kit_keys import KitKeyPair

_SITE_KEY_BYTES = 32
EXIT_USAGE = 2


def _read_text(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}",
                         hint=f"check the {option} path") from exc


def _site_key(args: argparse.Namespace) -> bytes:
    if args.site_key is None:
        raise StoreError("a restore from a backup needs --site-key: the backup holds the site "
                         "keys sealed under the old data directory's site.key, which is not "
                         "in the backup",
                         hint="pass --site-key with the copy of site.key you kept apart from "
                         "the backups (see README, Restore)")
    try:
        secret: bytes = args.site_key.read_bytes()
    except OSError as exc:
        raise StoreError(f"cannot read {args.site_key}: {exc.strerror}",
                         hint="check the --site-key path") from exc
    if len(secret) != _SITE_KEY_BYTES:
        raise StoreError(f"{args.site_key} does not hold a 32-byte site key",
                         hint="pass the site.key file of the old data directory")
    return secret


def _kit_keys(args: argparse.Namespace) -> KitKeyPair:
    opened = open_kit(args)
    if opened.keys is None:
        raise StoreError(f"{args.recovery_kit} predates kit keys (format 1): it cannot open "
                         "backups", hint="open the backup with its passphrase: "
                         "--backup-passphrase-file")
    return opened.keys


def _file_key(args: argparse.Namespace, header: BackupHeader | None) -> bytes | None:
    if header is None:
        return None  # a plaintext backup
    if args.recovery_kit is not None:
        return unlock_with_kit(header, _kit_keys(args))
    if args.backup_passphrase_file is not None:
        passphrase = _read_text(args.backup_passphrase_file, "--backup-passphrase-file")
        return unlock_with_passphrase(header, passphrase.rstrip("\n"))
    raise StoreError(f"{args.from_backup} is encrypted; say how to open it",
                     hint="pass --backup-passphrase-file F, or --recovery-kit KIT with "
                     "--passphrase-file or --share")


def _say(args: argparse.Namespace, **fields: object) -> None:
    if args.json:
        print(json.dumps(fields), flush=True)
    else:
        print(" ".join(f"{k}: {v}" for k, v in fields.items()), flush=True)


def run(args: argparse.Namespace) -> int:
    """Restore `args.from_backup` into `args.data`; exit code."""
    if args.hub is not None or args.token is not None:
        print("error: --from-backup restores with no hub: drop --hub and --token",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        site_key = _site_key(args)
        header = read_backup_header(args.from_backup)
        try:
            file_key = _file_key(args, header)
        except ProtocolError as exc:
            raise BackupRefused(f"{args.from_backup}: {exc.message}", hint=exc.hint) from exc
        installed = install_backup(args.from_backup, args.data, header=header,
                                   file_key=file_key, site_key=site_key)
    except EdgeError as err:
        return fail(err)
    _say(args, restored=str(args.data), site=str(installed.site_id),
         practice=str(installed.practice_id), resources=installed.resources,
         history=installed.history, hub=installed.hub_url,
         next=f"`chartsync edge check --data {args.data}`, then `chartsync edge serve`")
    if installed.hub_url is not None:
        print(f"warning: site {installed.site_id} syncs with {installed.hub_url}. If that hub "
              "still runs and this site pushed changes after the backup was made, do not "
              "serve this copy: it would not take those changes back and the hub would "
              "refuse its new ones (chain_broken). Restore from the hub instead (`chartsync "
              "edge restore --hub ...`). With the hub lost, serve it and `chartsync edge "
              "reenroll` it once the hub is rebuilt.", file=sys.stderr)
    return EXIT_OK


__all__ = ["run"]
