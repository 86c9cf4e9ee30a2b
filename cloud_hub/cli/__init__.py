"""`chartsync hub ...`: serve, operator create, practice create / list, site list /
register-former / approve, trim (one module each)."""

from __future__ import annotations

import argparse

from cloud_hub.cli import operator, practice, serve, site, trim


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `hub` command group to the top-level `chartsync` parser."""
    group = sub.add_parser("hub", help="run and administer the cloud hub",
                           description="Run and administer the chartsync cloud hub.",
                           epilog="examples:\n  chartsync hub serve --store sqlite:hub.db\n"
                           "  chartsync hub operator create --store sqlite:hub.db\n"
                           "  chartsync hub practice create 'Sato Clinic' --store sqlite:hub.db\n"
                           "  chartsync hub site list --practice-id PID --store sqlite:hub.db\n"
                           "  chartsync hub trim --store sqlite:hub.db --keep 100000\n",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    hub_sub = group.add_subparsers(dest="hub_command", metavar="HUB_COMMAND")
    hub_sub.required = True
    serve.add_command(hub_sub)
    operator.add_command(hub_sub)
    practice.add_command(hub_sub)
    site.add_command(hub_sub)
    trim.add_command(hub_sub)
