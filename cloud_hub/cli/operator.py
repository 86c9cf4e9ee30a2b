"""`chartsync hub operator create`: mint an operator credential and show it once."""

from __future__ import annotations

import argparse
import time

import nacl.utils

from cloud_hub.cli.store_arg import EXIT_OK, add_store_arg, with_store
from cloud_hub.credentials import credential_hash, new_operator_token
from cloud_hub.store.base import HubStore


def add_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = sub.add_parser("operator", help="operator credentials")
    ops = group.add_subparsers(dest="operator_command", metavar="OPERATOR_COMMAND")
    ops.required = True
    create = ops.add_parser(
        "create", help="create an operator credential (shown once)",
        description="Create an operator credential for admin calls; it is shown once and "
        "stored only as a hash.",
        epilog="example:\n  chartsync hub operator create --store sqlite:hub.db\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_store_arg(create)
    create.set_defaults(handler=run_create)


def run_create(args: argparse.Namespace) -> int:
    token = new_operator_token(nacl.utils.random(32))

    async def action(store: HubStore) -> None:
        await store.add_operator(credential_hash(token), int(time.time() * 1000))

    code, _ = with_store(args.store, action)
    if code == EXIT_OK:
        print(token)
        print("(shown once: keep it in a password manager)")
    return code
