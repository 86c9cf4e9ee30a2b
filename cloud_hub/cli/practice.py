"""`chartsync hub practice create NAME` / `practice list`, talking to the store directly."""

from __future__ import annotations

import argparse
import json
import time

import nacl.utils

from cloud_hub.api.practices import issue_enrollment_token
from cloud_hub.cli.store_arg import EXIT_OK, add_store_arg, uuid_arg, with_store
from cloud_hub.store.base import HubStore, PracticeRecord
from sync_protocol.ids import PracticeId, uuid7

DEFAULT_TTL_S = 24 * 3600


def add_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = sub.add_parser("practice", help="practices")
    ops = group.add_subparsers(dest="practice_command", metavar="PRACTICE_COMMAND")
    ops.required = True
    create = ops.add_parser(
        "create", help="create a practice and its first enrollment token",
        description="Create a practice; print its id and a one-time enrollment token for "
        "its first site.",
        epilog="example:\n  chartsync hub practice create 'Sato Clinic' --store sqlite:hub.db\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    create.add_argument("name")
    create.add_argument("--practice-id", type=practice_id_arg, metavar="UUID",
                        help="re-create a lost hub's practice under its old id (`practice_id` "
                        "in any site's GET /status); its sites then run `chartsync edge "
                        "reenroll`")
    create.add_argument("--token-ttl-s", type=int, default=DEFAULT_TTL_S,
                        help="enrollment token lifetime in seconds (default: one day)")
    create.add_argument("--json", action="store_true", help="stable JSON output")
    add_store_arg(create)
    create.set_defaults(handler=run_create)
    listing = ops.add_parser(
        "list", help="list practices", description="List the hub's practices.",
        epilog="example:\n  chartsync hub practice list --store sqlite:hub.db --json\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    listing.add_argument("--json", action="store_true", help="stable JSON output")
    add_store_arg(listing)
    listing.set_defaults(handler=run_list)


#: `--practice-id UUID`.
practice_id_arg = uuid_arg("practice", "`practice_id` in any site's GET /status, or "
                           "`chartsync hub practice list`")


def run_create(args: argparse.Namespace) -> int:
    now = int(time.time() * 1000)
    practice_id = args.practice_id or PracticeId(uuid7(now, nacl.utils.random(10)))

    async def action(store: HubStore) -> tuple[str, int]:
        await store.create_practice(practice_id, args.name, now)
        return await issue_enrollment_token(store, practice_id, now, nacl.utils.random(32),
                                            args.token_ttl_s)

    code, result = with_store(args.store, action)
    if code != EXIT_OK or result is None:
        return code
    token, expires_ms = result
    if args.json:
        print(json.dumps({"practice_id": str(practice_id), "enrollment_token": token,
                          "expires_ms": expires_ms}))
    else:
        print(f"practice id:       {practice_id}")
        print(f"enrollment token:  {token}")
        print(f"(one use, expires in {args.token_ttl_s // 3600} h; shown once)")
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    async def action(store: HubStore) -> list[PracticeRecord]:
        return await store.list_practices()

    code, practices = with_store(args.store, action)
    if code != EXIT_OK or practices is None:
        return code
    if args.json:
        print(json.dumps([{"practice_id": str(p.practice_id), "name": p.name,
                           "created_ms": p.created_ms} for p in practices]))
    else:
        print(f"{'PRACTICE ID':36}  NAME")
        for p in practices:
            print(f"{p.practice_id!s:36}  {p.name}")
    return EXIT_OK
