"""`chartsync edge user add NAME --role ROLE --data DIR`: a staff account and its token."""

from __future__ import annotations

import argparse
import os

from edge_node.cli.common import EXIT_OK, add_data_option, fail, parser_for, wall_ms
from edge_node.errors import EdgeError
from edge_node.node import open_sync
from edge_node.store.users import Role, add_user


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "user", help_text="manage staff accounts",
                   description="Manage the staff accounts of this edge.",
                   examples="  chartsync edge user add suzuki --role clinician --data DIR\n")
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


def run_add(args: argparse.Namespace) -> int:
    try:
        conn = open_sync(args.data)
        try:
            user, token = add_user(conn, name=args.name, role=Role(args.role), now_ms=wall_ms(),
                                   random_bytes=os.urandom(42))
        finally:
            conn.close()
    except EdgeError as err:
        return fail(err)
    print(f"user {user.name} ({user.user_id}) role {user.role}; token, shown only now:")
    print(token)
    return EXIT_OK
