"""`python -m cloud_hub serve ...`: the hub's commands without the `chartsync` front end."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cloud_hub.cli import add_commands


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloud_hub")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_commands(sub)
    args = parser.parse_args(["hub", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
