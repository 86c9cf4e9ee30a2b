"""`chartsync hub site list | register-former | approve`: the operator's site commands,
talking to the store directly (the same actions as the operator API, audited alike).

    chartsync hub site list --practice-id PID --store URL [--json]
    chartsync hub site register-former --practice-id PID --from sites.json --store URL
    chartsync hub site approve SITE --practice-id PID --store URL

`register-former` rebuilds a lost hub's registry: it reads what `chartsync edge
sites --json` printed on a surviving site and registers (revoked, with their old
ids and public keys) the sites the hub does not know, so that the batches they
signed, relayed by the survivors, verify.  Every entry is validated before
anything is written; a site already registered is left as it is, so a rerun
after a failure is safe.  `approve` is for disaster recovery, when no approved
site is left to approve a restored one.

Each change is recorded in `operator_actions` with `console:<login>` as the
operator reference, and logged with the ids, by the same code as the operator API
(`cloud_hub.operator_actions`).  A running hub reads the registry
from the store on every request: pushes and approvals see the change at once;
other sites' directories pick it up at their next refresh.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Final

import nacl.utils
from pydantic import TypeAdapter, ValidationError

from cloud_hub.api.messages import FormerSite
from cloud_hub.cli.practice import practice_id_arg
from cloud_hub.cli.store_arg import EXIT_FAILURE, EXIT_OK, add_store_arg, uuid_arg, with_store
from cloud_hub.errors import NotFound
from cloud_hub.ingest import public_keys
from cloud_hub.operator_actions import approve_site, register_former_site, roster_note
from cloud_hub.store.base import HubStore, SiteRecord
from sync_protocol.ids import PracticeId, SiteId

#: `edge sites --json` prints a few entries per practice; a file far larger is not one.
MAX_FILE_BYTES: Final = 1024 * 1024


_ENTRIES: Final = TypeAdapter(list[dict[str, Any]])


def add_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = sub.add_parser("site", help="a practice's sites (operator)")
    ops = group.add_subparsers(dest="site_command", metavar="SITE_COMMAND")
    ops.required = True
    listing = ops.add_parser(
        "list", help="list a practice's sites",
        description="List a practice's sites: id, status, name and key fingerprint.",
        epilog="example:\n  chartsync hub site list --practice-id PID --store sqlite:hub.db\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    register = ops.add_parser(
        "register-former", help="register sites lost with the hub, from a survivor's list",
        description="After rebuilding a lost hub: register the practice's sites that are "
        "gone (lost together with the hub) under their old ids and public keys, as revoked, "
        "so that their batches relayed by the surviving sites verify. FILE is the output of "
        "`chartsync edge sites --data DIR --json` on a surviving site; sites the hub already "
        "knows are left as they are.",
        epilog="example:\n  chartsync edge sites --data /var/lib/chartsync --json > sites.json"
        "\n  chartsync hub site register-former --practice-id PID --from sites.json "
        "--store sqlite:hub.db\n", formatter_class=argparse.RawDescriptionHelpFormatter)
    register.add_argument("--from", dest="from_file", type=Path, required=True,
                          metavar="FILE", help="`chartsync edge sites --json` output")
    register.add_argument("--site", action="append", default=[], metavar="SITE_ID",
                          help="register only this site of the file (repeatable)")
    approve = ops.add_parser(
        "approve", help="approve a pending site (disaster recovery)",
        description="Approve a pending site as the operator: for disaster recovery, when "
        "every site of the practice was lost and no approved site is left to approve the "
        "restored one (which proves itself by holding the practice key from the recovery "
        "kit). Otherwise an approved site approves, after comparing fingerprints.",
        epilog="example:\n  chartsync hub site approve SITE_ID --practice-id PID "
        "--store sqlite:hub.db\n", formatter_class=argparse.RawDescriptionHelpFormatter)
    approve.add_argument("site_id", type=uuid_arg("site", "`chartsync hub site list` shows "
                                                  "them"), metavar="SITE_ID")
    for cmd, handler in ((listing, run_list), (register, run_register),
                         (approve, run_approve)):
        cmd.add_argument("--practice-id", type=practice_id_arg, required=True, metavar="UUID")
        cmd.add_argument("--json", action="store_true", help="stable JSON output")
        add_store_arg(cmd)
        cmd.set_defaults(handler=handler)


def _operator_ref() -> str:
    try:
        return f"console:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return f"console-uid:{os.getuid()}"


def _site_json(site: SiteRecord) -> dict[str, Any]:
    return {"site_id": str(site.site_id), "name": site.name, "status": site.status.value,
            "fingerprint": public_keys(site).fingerprint}


def _print_sites(sites: list[SiteRecord], as_json: bool) -> None:
    if as_json:
        print(json.dumps([_site_json(s) for s in sites]))
        return
    for s in sites:
        print(f"{s.site_id}  {s.status.value:<9} {public_keys(s).fingerprint}  {s.name}")


async def _require_practice(store: HubStore, practice_id: PracticeId) -> None:
    if not await store.practice_exists(practice_id):
        raise NotFound(f"this hub has no practice {practice_id}",
                       hint="`chartsync hub practice list` shows them; after losing the hub, "
                       "re-create it with `chartsync hub practice create NAME --practice-id`")


def _no_site(practice_id: PracticeId, site_id: SiteId) -> NotFound:
    return NotFound(f"practice {practice_id} has no site {site_id}",
                    hint=f"`chartsync hub site list --practice-id {practice_id}` shows its sites")


def run_list(args: argparse.Namespace) -> int:
    async def action(store: HubStore) -> list[SiteRecord]:
        await _require_practice(store, args.practice_id)
        return await store.list_sites(args.practice_id)

    code, sites = with_store(args.store, action)
    if code == EXIT_OK and sites is not None:
        _print_sites(sites, args.json)
    return code


def read_former_sites(path: Path, only: list[str]) -> list[FormerSite]:
    """The entries of an `edge sites --json` file (all of them, or those in `only`).

    Raises ValueError with a message naming what is wrong; nothing is written before.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ValueError(f"{path} is {len(raw)} bytes; `edge sites --json` prints far less")
    try:
        entries = _ENTRIES.validate_json(raw)
    except ValidationError:
        raise ValueError(f"{path} is not a JSON list of sites (the output of "
                         "`chartsync edge sites --json`)") from None
    sites = []
    for number, entry in enumerate(entries, 1):
        try:
            sites.append(FormerSite.model_validate(entry.get("register")))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "register"
            raise ValueError(f"entry {number} of {path}: {where}: {first['msg']}") from None
    chosen = [s for s in sites if not only or str(s.site_id) in only]
    missing = set(only) - {str(s.site_id) for s in sites}
    if missing:
        raise ValueError(f"{path} has no site {', '.join(sorted(missing))}")
    return chosen


def run_register(args: argparse.Namespace) -> int:
    try:
        sites = read_former_sites(args.from_file, args.site)
    except ValueError as exc:
        print(f"error: {exc}\nnext step: on a surviving site run `chartsync edge sites --data "
              "DIR --json > sites.json` and pass that file", file=sys.stderr)
        return EXIT_FAILURE
    practice_id: PracticeId = args.practice_id

    async def action(store: HubStore) -> list[tuple[SiteRecord, bool]]:
        await _require_practice(store, practice_id)
        out = []
        for site in sites:
            site_id = SiteId(site.site_id)
            existing = await store.get_site(practice_id, site_id)
            if existing is not None:
                out.append((existing, False))
                continue
            record = await register_former_site(
                store, practice_id, site.site_id, site.name, site.verify_key, site.box_key,
                operator_ref=_operator_ref(), now_ms=int(time.time() * 1000),
                random_bytes=nacl.utils.random(42))
            out.append((record, True))
        return out

    code, results = with_store(args.store, action)
    if code != EXIT_OK or results is None:
        return code
    if args.json:
        print(json.dumps([{**_site_json(r), "registered": new} for r, new in results]))
        return EXIT_OK
    for record, new in results:
        said = "registered (revoked)" if new else f"already known ({record.status.value})"
        print(f"{record.site_id}  {said}  {record.name}")
    return EXIT_OK


def run_approve(args: argparse.Namespace) -> int:
    practice_id: PracticeId = args.practice_id
    target: SiteId = args.site_id

    async def action(store: HubStore) -> tuple[SiteRecord, str | None]:
        await _require_practice(store, practice_id)
        updated = await approve_site(store, practice_id, target, operator_ref=_operator_ref(),
                                     now_ms=int(time.time() * 1000),
                                     random_bytes=nacl.utils.random(10))
        if updated is None:
            raise _no_site(practice_id, target)
        return updated, await roster_note(store, practice_id, target)

    code, result = with_store(args.store, action)
    if code == EXIT_OK and result is not None:
        site, note = result
        _print_sites([site], args.json)
        if note is not None:
            print(f"warning: {note}", file=sys.stderr)
    return code


__all__ = ["add_command", "read_former_sites"]
