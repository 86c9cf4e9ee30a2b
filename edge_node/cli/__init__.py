"""`chartsync edge ...`: one module per subcommand, so each command's options, help and
exit codes are read and changed in one place.

    init    create a data directory: database, site identity, first admin token
    serve   run the FHIR API on the LAN
    tls-cert  the self-signed HTTPS certificate `serve` uses (prints its fingerprint)
    user    staff accounts: add (prints its token once), list, disable, enable, token
    backup  consistent online copy of the database, encrypted by default
    check   integrity: rows, history, outbox and audit agree
    invite  enrollment token for a new site          approve  approve a site (fingerprint)
    revoke  revoke a site, rotate the practice key   dead-letters / held  sync problems
    restore  a lost site back from the hub, or from a backup file (restore_backup.py)
    reenroll  this site on a rebuilt hub
    sites   the practice's sites and public keys (to register a lost one on a rebuilt hub)
    roster  the members the member-signed roster proves   replace-kit  a new recovery kit
    request-keys  ask the members to re-send key epochs this site lacks
    snapshots  the hub's verified snapshots of the practice (to pick one for restore)

Every handler is `(args) -> int`: 0 ok, 1 failure, 2 usage.
"""

from __future__ import annotations

import argparse

from edge_node.cli import (
    approve,
    backup,
    check,
    dead_letters,
    held,
    init,
    invite,
    reenroll,
    replace_kit,
    request_keys,
    restore,
    revoke,
    roster,
    serve,
    sites,
    snapshots,
    tls_cert,
    user,
)

EXAMPLES = """\
examples:
  chartsync edge init --data /var/lib/chartsync
  chartsync edge serve --data /var/lib/chartsync --host 0.0.0.0 --port 8080
  chartsync edge user add suzuki --role clinician --data /var/lib/chartsync
  chartsync edge backup --data /var/lib/chartsync --to /mnt/usb/edge.csbackup --passphrase-file F
  chartsync edge check --data /var/lib/chartsync
  chartsync edge tls-cert --data /var/lib/chartsync --host edge.clinic.lan --ip 192.168.10.5
  chartsync edge init --data DIR --hub https://hub.example.jp --token TOKEN --name Branch
  chartsync edge invite --data DIR            (on an approved site)
  chartsync edge approve SITE --fingerprint XXXX-XXXX-XXXX-XXXX-XXXX --data DIR

exit codes: 0 ok, 1 failure, 2 usage error
"""


def add_edge_subcommands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add every `edge` subcommand to `sub`."""
    for module in (init, serve, user, backup, check, restore, invite, approve, revoke,
                   roster, replace_kit, request_keys, reenroll, sites, snapshots,
                   dead_letters, held):
        module.add_parser(sub)
    tls_cert.add_parser(sub)  # listed last: a one-time setup step, not daily work


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `edge` command group to the top-level `chartsync` parser."""
    edge = sub.add_parser("edge", help="run and administer this clinic's edge node",
                          description="Run and administer the clinic's edge node.",
                          epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    edge_sub = edge.add_subparsers(dest="edge_command", metavar="COMMAND")
    edge_sub.required = True
    add_edge_subcommands(edge_sub)
