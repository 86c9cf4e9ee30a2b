"""The recovery kit's options and screen, shared by `edge init` and `edge replace-kit`, and
its opening, shared by `edge restore` from the hub and from a backup file."""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from edge_node.hub_link.errors import EnrollmentError
from sync_protocol.errors import ProtocolError
from sync_protocol.recovery import OpenedKit, open_recovery_kit, open_shared_recovery_kit

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


def open_kit(args: argparse.Namespace) -> OpenedKit:
    """The kit of --recovery-kit, opened with --passphrase-file or the --share files;
    raises `EnrollmentError` naming what is wrong."""
    try:
        text = args.recovery_kit.read_text(encoding="utf-8")
        if args.share:
            shares = [f.read_text(encoding="utf-8").strip() for f in args.share]
            return open_shared_recovery_kit(text, shares)
        if args.passphrase_file is None:
            raise EnrollmentError("the recovery kit needs --passphrase-file or --share",
                                  hint="give the passphrase file, or k custodians' shares")
        passphrase = args.passphrase_file.read_text(encoding="utf-8").rstrip("\n")
        return open_recovery_kit(text, passphrase)
    except OSError as exc:
        raise EnrollmentError(f"cannot read {exc.filename}: {exc.strerror}",
                              hint="check the file paths") from exc
    except ProtocolError as exc:
        raise EnrollmentError(f"recovery kit: {exc}", hint=exc.hint) from exc


__all__ = ["add_recovery_options", "open_kit", "print_kit", "recovery_passphrase",
           "recovery_shares"]
