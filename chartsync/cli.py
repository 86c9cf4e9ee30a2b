"""The ``chartsync`` command line: parses arguments, dispatches to a subcommand, sets the exit code.

Exit codes, for every subcommand: 0 ok, 1 failure, 2 usage error (argparse's own convention).
This package is the only place that sees both the edge and the hub: `chartsync edge ...`
commands live in `edge_node/cli/`, `chartsync hub ...` in `cloud_hub/cli/`; each side
registers its own group through `add_commands(subparsers)`, one module per subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from edge_node.store.file_modes import private_files
from sync_protocol.version import PROTOCOL_VERSION, SOFTWARE_VERSION

#: Modules that register a command group; added as each side grows its CLI.
_SIDES: tuple[str, ...] = ("cloud_hub.cli", "edge_node.cli")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

_EXAMPLES = """\
examples:
  chartsync version      show the software and wire-protocol versions
  chartsync demo         hub on the embedded store plus two edges on this machine

exit codes: 0 ok, 1 failure, 2 usage error
"""

def _run_version(args: argparse.Namespace) -> int:
    """Print the software version and the wire-protocol version (major.minor)."""
    major, minor = PROTOCOL_VERSION
    print(f"chartsync {SOFTWARE_VERSION}")
    print(f"protocol {major}.{minor}")
    return EXIT_OK


def _run_demo(args: argparse.Namespace) -> int:
    """Run the walkthrough: a hub and two edges on this machine (see chartsync/demo.py)."""
    from chartsync.demo import main as demo_main

    return demo_main((["--dir", str(args.dir)] if args.dir else [])
                     + (["--no-wait"] if args.no_wait else []))


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser; pure, so tests can inspect it."""
    parser = argparse.ArgumentParser(
        prog="chartsync",
        description="chartsync: offline-first, end-to-end-encrypted medical-chart sync.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    version = sub.add_parser(
        "version",
        help="show the software and protocol versions",
        description="Show the software version and the wire-protocol version.",
        epilog="example:\n  chartsync version\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    version.set_defaults(handler=_run_version)

    demo = sub.add_parser(
        "demo",
        help="run a hub and two edges on this machine",
        description="Run a hub on the embedded store plus two edges on this machine, "
        "showing changes sync between them.",
        epilog="example:\n  chartsync demo\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--dir", type=Path, help="work directory (default: a new temp dir)")
    demo.add_argument("--no-wait", action="store_true", help="exit after the walkthrough")
    demo.set_defaults(handler=_run_demo)
    for side in _SIDES:
        module = importlib.import_module(side)
        module.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit code.

    Usage errors return 2 (argparse prints the message to stderr); never raises ``SystemExit``
    for them, so tests can call ``main([...])`` directly.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 0 for --help and 2 for usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler = args.handler
    with private_files():  # charts, keys and backups are the owner's alone
        code: int = handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
