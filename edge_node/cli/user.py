"""`chartsync edge user add|list|disable|enable|token`: staff accounts and their tokens.

    chartsync edge user add NAME --role ROLE --data DIR   # prints the token once
    chartsync edge user list --data DIR
    chartsync edge user disable NAME --data DIR           # left the clinic, lost device
    chartsync edge user enable NAME --data DIR
    chartsync edge user token NAME --data DIR             # a new token; the old one stops

Changes reach a running `edge serve` within `ACCOUNT_RECHECK_S` (5 s).  Each change
(not `list`) is audited with the operating-system account that ran the command
(`store.account_events`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os

from edge_node.api.auth import ACCOUNT_RECHECK_S
from edge_node.cli.command import (
    EXIT_OK,
    add_data_option,
    fail,
    os_user,
    parser_for,
    wall_ms,
)
from edge_node.errors import EdgeError
from edge_node.store.connection import with_database
from edge_node.store.users import (
    TOKEN_BYTES,
    Role,
    add_user,
    list_accounts,
    replace_token,
    set_disabled,
)

_RECHECK = f"a running edge refuses it within {ACCOUNT_RECHECK_S:g} s"


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "user", help_text="manage staff accounts",
                   description="Manage the staff accounts of this edge.",
                   examples="  chartsync edge user add suzuki --role clinician --data DIR\n"
                   "  chartsync edge user disable suzuki --data DIR\n")
    users = p.add_subparsers(dest="user_command", metavar="COMMAND")
    users.required = True
    add = parser_for(users, "add", help_text="add an account and print its token once",
                     description="Add a staff account. Its bearer token is printed once and "
                     "only its SHA-256 is stored: hand it to the person now.",
                     examples="  chartsync edge user add suzuki --role clinician --data DIR\n"
                     "  chartsync edge user add audit1 --role auditor --data DIR\n")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add_data_option(add)
    add.set_defaults(handler=run_add)

    ls = parser_for(users, "list", help_text="list the accounts (never their tokens)",
                    description="List every account: name, role, id, created, enabled or "
                    "disabled.",
                    examples="  chartsync edge user list --data DIR\n")
    add_data_option(ls)
    ls.set_defaults(handler=run_list)

    for name, help_text, description in (
            ("disable", "refuse an account's token from now on",
             "Disable an account (its holder left, or its token may have leaked): its "
             f"token gets 401; {_RECHECK}. Its history and audit rows stay. The last "
             "enabled admin cannot be disabled."),
            ("enable", "accept a disabled account's token again",
             "Enable a disabled account again, with the token it had."),
            ("token", "replace an account's token and print the new one once",
             f"Replace an account's token (lost or leaked): the old token gets 401 ({_RECHECK});"
             " the new one is printed once.")):
        cmd = parser_for(users, name, help_text=help_text, description=description,
                         examples=f"  chartsync edge user {name} suzuki --data DIR\n")
        cmd.add_argument("name")
        add_data_option(cmd)
        cmd.set_defaults(handler={"disable": run_disable, "enable": run_enable,
                                  "token": run_token}[name])



def run_add(args: argparse.Namespace) -> int:
    try:
        user, token = with_database(args.data, lambda conn: add_user(
            conn, name=args.name, role=Role(args.role), now_ms=wall_ms(),
            random_bytes=os.urandom(42), by_whom=os_user()))
    except EdgeError as err:
        return fail(err)
    print(f"user {user.name} ({user.user_id}) role {user.role}; token, shown only now:")
    print(token)
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    try:
        accounts = with_database(args.data, list_accounts)
    except EdgeError as err:
        return fail(err)
    print(f"{'NAME':<20} {'ROLE':<10} {'STATE':<9} {'CREATED (UTC)':<17} ID")
    for a in accounts:
        created = dt.datetime.fromtimestamp(a.created_ms / 1000, dt.UTC)
        print(f"{a.name:<20} {a.role.value:<10} {'disabled' if a.disabled else 'enabled':<9} "
              f"{created:%Y-%m-%d %H:%M} {a.user_id}")
    return EXIT_OK


def _set(args: argparse.Namespace, disabled: bool) -> int:
    try:
        account = with_database(args.data, lambda conn: set_disabled(
            conn, args.name, disabled=disabled, now_ms=wall_ms(), by_whom=os_user()))
    except EdgeError as err:
        return fail(err)
    if disabled:
        print(f"user {account.name} ({account.user_id}) disabled; {_RECHECK}")
    else:
        print(f"user {account.name} ({account.user_id}) enabled again")
    return EXIT_OK


def run_disable(args: argparse.Namespace) -> int:
    return _set(args, True)


def run_enable(args: argparse.Namespace) -> int:
    return _set(args, False)


def run_token(args: argparse.Namespace) -> int:
    try:
        account, token = with_database(args.data, lambda conn: replace_token(
            conn, args.name, random_bytes=os.urandom(TOKEN_BYTES), now_ms=wall_ms(),
            by_whom=os_user()))
    except EdgeError as err:
        return fail(err)
    print(f"user {account.name} ({account.user_id}): new token, shown only now (the old "
          f"one no longer works; {_RECHECK}):")
    print(token)
    return EXIT_OK
