"""The recovery kit's options and screen, shared by `edge init` and `edge replace-kit`."""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from edge_node.hub_link.errors import EnrollmentError

_KIT_MESSAGE = """RECOVERY KIT written to {path}
  Kit fingerprint {fingerprint}; it opens every practice key, locked with {how}.
  Print it or copy it to a USB stick and store it OFFLINE, away from this machine.
  It is needed only if EVERY site of the practice is lost: with it, a new machine can
  restore all charts from the hub. Without it, nobody (not even the hub) can.
"""


def add_recovery_options(parser: argparse.ArgumentParser, *, when: str) -> None:
    parser.add_argument("--recovery-passphrase-file", type=Path,
                        help=f"file holding the recovery kit passphrase ({when}; else asked)")
    parser.add_argument("--recovery-shares", metavar="K-of-N",
                        help="split the recovery kit into N SLIP-39 shares, any K open it")


def recovery_shares(args: argparse.Namespace) -> tuple[int, int] | None:
    """K-of-N as numbers; raises `EnrollmentError` for another form."""
    if not args.recovery_shares:
        return None
    k, _, n = args.recovery_shares.lower().partition("-of-")
    try:
        return int(k), int(n)
    except ValueError:
        raise EnrollmentError(f"--recovery-shares {args.recovery_shares!r} is not K-of-N",
                              hint="for example --recovery-shares 2-of-3") from None


def recovery_passphrase(args: argparse.Namespace) -> str:
    """From --recovery-passphrase-file, or asked twice on the terminal."""
    if args.recovery_passphrase_file is not None:
        return str(args.recovery_passphrase_file.read_text(encoding="utf-8").strip())
    first = getpass.getpass("recovery kit passphrase (at least 13 characters): ")
    if getpass.getpass("again: ") != first:
        raise EnrollmentError("the two passphrases differ", hint="run the command again")
    return first


def print_kit(path: Path, fingerprint: str, shares: tuple[int, int] | None,
              words: list[str]) -> None:
    how = f"any {shares[0]} of {shares[1]} shares" if shares else "your passphrase"
    print(_KIT_MESSAGE.format(path=path, fingerprint=fingerprint, how=how))
    for i, share in enumerate(words, 1):
        print(f"share {i}: {share}")


__all__ = ["add_recovery_options", "print_kit", "recovery_passphrase", "recovery_shares"]
