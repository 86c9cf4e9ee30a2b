"""`chartsync edge init --data DIR`: create a data directory and its first admin."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from edge_node.cli.command import EXIT_OK, add_data_option, fail, parser_for, wall_ms
from edge_node.cli.recovery_options import (
    add_recovery_options,
    print_kit,
    recovery_passphrase,
    recovery_shares,
)
from edge_node.errors import EdgeError
from edge_node.hub_link.client import HubSettings
from edge_node.node import init_data_dir
from edge_node.sync.enroll import enroll_site


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "init",
                   help_text="create a data directory, and enroll it with a hub (--hub)",
                   description="Create the edge database, the site's identity and keys "
                   "(sealed under DIR/site.key, mode 0600) and a first admin account, whose "
                   "token is printed once. With --hub, --token and --name it also enrolls the site "
                   "with the hub: the first site of a practice writes the recovery kit, any "
                   "other waits until an approved site approves its key fingerprint.",
                   examples="  chartsync edge init --data /var/lib/chartsync\n"
                   "  chartsync edge init --data ./edge --admin yamada\n"
                   "  chartsync edge init --data ./edge --hub https://hub.example.jp "
                   "--token cse_... --name branch-a\n")
    add_data_option(p)
    p.add_argument("--admin", default="admin", help="name of the first admin (default admin)")
    p.add_argument("--hub", help="enroll with this hub (https://...)")
    p.add_argument("--token", help="one-time enrollment token (from the operator or "
                   "`chartsync edge invite`)")
    p.add_argument("--name", help="this site's name as the practice sees it")
    p.add_argument("--hub-ca", type=Path, help="PEM CA file the hub's certificate chains to "
                   "(default: the system store)")
    p.add_argument("--insecure-http", action="store_true",
                   help="allow a plain http:// hub (loopback demos only)")
    add_recovery_options(p, when="first site")
    p.set_defaults(handler=run)


def run_enroll(args: argparse.Namespace) -> int:
    if not args.token or not args.name:
        print("error: --hub needs --token and --name", file=sys.stderr)
        return 2
    try:
        settings = HubSettings.parse(args.hub, ca_file=args.hub_ca,
                                     insecure_http=args.insecure_http)
        shares = recovery_shares(args)
        result = asyncio.run(enroll_site(
            args.data, settings, token=args.token, name=args.name, admin_name=args.admin,
            now_ms=wall_ms(), entropy=os.urandom,
            passphrase=None if shares else (lambda: recovery_passphrase(args)), shares=shares,
            created=datetime.now(UTC).date().isoformat()))
    except (EdgeError, ValueError) as err:
        if isinstance(err, EdgeError):
            return fail(err)
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"site {result.site_id} enrolled in practice {result.practice_id} "
          f"({result.status})")
    print(f"site key fingerprint {result.fingerprint}")
    print(f"admin user {result.admin.name} ({result.admin.user_id}); token, shown only now:")
    print(result.admin_token)
    if result.recovery_kit is not None and result.kit_fingerprint is not None:
        print_kit(result.recovery_kit, result.kit_fingerprint, shares, result.shares)
    if result.status != "approved":
        print("This site is PENDING. On an approved site, an admin runs:\n"
              f"  chartsync edge approve {result.site_id} --fingerprint {result.fingerprint}"
              "\nafter comparing the fingerprint with this screen. Then start "
              "`chartsync edge serve`; it syncs once the keys arrive.")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    if args.hub:
        return run_enroll(args)
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
