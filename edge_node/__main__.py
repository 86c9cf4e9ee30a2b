"""`python -m edge_node serve --data DIR --host H --port P` (and the other edge commands)."""

from __future__ import annotations

import argparse
import sys

from edge_node.cli import EXAMPLES, add_edge_subcommands
from edge_node.store.file_modes import private_files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_node", epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_edge_subcommands(sub)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    with private_files():  # charts, keys and backups are the owner's alone
        code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
