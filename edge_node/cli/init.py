"""`chartsync edge init --data DIR`: create a data directory and its first admin."""

from __future__ import annotations

import argparse
import os

from edge_node.cli.common import EXIT_OK, add_data_option, fail, parser_for, wall_ms
from edge_node.errors import EdgeError
from edge_node.node import init_data_dir


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "init", help_text="create a data directory (local only for now)",
                   description="Create the edge database, the site's identity and keys "
                   "(sealed under DIR/site.key, mode 0600) and a first admin account, whose "
                   "token is printed once. Enrollment with a hub arrives with issue #5.",
                   examples="  chartsync edge init --data /var/lib/chartsync\n"
                   "  chartsync edge init --data ./edge --admin yamada\n")
    add_data_option(p)
    p.add_argument("--admin", default="admin", help="name of the first admin (default admin)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        site, admin, token = init_data_dir(args.data, now_ms=wall_ms(), entropy=os.urandom,
                                           admin_name=args.admin)
    except EdgeError as err:
        return fail(err)
    print(f"site {site.site_id} created in {args.data}")
    print(f"site key fingerprint {site.keys.fingerprint}")
    print(f"admin user {admin.name} ({admin.user_id}); token, shown only now:")
    print(token)
    return EXIT_OK
