"""`chartsync edge replace-kit --data DIR`: a new recovery kit; the old one stops opening
new key epochs."""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import UTC, datetime

from edge_node.cli.command import EXIT_OK, add_data_option, fail, parser_for, wall_ms
from edge_node.cli.recovery_options import (
    add_recovery_options,
    print_kit,
    recovery_passphrase,
    recovery_shares,
)
from edge_node.errors import EdgeError
from edge_node.sync.kit_rotation import replace_kit


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "replace-kit", help_text="make a new recovery kit (new passphrase or "
                   "custodians)",
                   description="Make a new recovery kit, name it in the practice roster and "
                   "seal every key epoch to it at the hub; it replaces DIR/recovery-kit.txt. "
                   "From then on new key epochs are sealed to the new kit only: the old kit "
                   "still opens the epochs made before, so destroy its copies. Run it on an "
                   "approved site when a custodian leaves or the passphrase may be known.",
                   examples="  chartsync edge replace-kit --data /var/lib/chartsync "
                   "--recovery-passphrase-file pass.txt\n"
                   "  chartsync edge replace-kit --data DIR --recovery-shares 2-of-3\n")
    add_data_option(p)
    add_recovery_options(p, when="a passphrase kit")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        shares = recovery_shares(args)
        passphrase = None if shares else recovery_passphrase(args)
        replaced = asyncio.run(replace_kit(
            args.data, passphrase=passphrase, shares=shares, entropy=os.urandom,
            created=datetime.now(UTC).date().isoformat(), now_ms=wall_ms()))
    except EdgeError as err:
        return fail(err)
    except ValueError as err:
        print(f"error: {err}")
        return 1
    print(f"recovery kit {replaced.old_fingerprint} replaced by {replaced.fingerprint}; "
          "every key epoch is sealed to the new kit at the hub")
    print_kit(replaced.path, replaced.fingerprint, shares, replaced.words)
    print("Destroy every copy of the old kit: it still opens the epochs made before now.")
    return EXIT_OK
