"""Versions of the wire protocol and of the software, in one place.

`PROTOCOL_VERSION` is (major, minor).  A peer with another major is refused with
`UnsupportedVersion`; a batch with a newer minor than ours is held by the reader
(`UpgradeRequired`) until this side is upgraded.  Every change of a wire field
bumps the version and updates `PROTOCOL.md` and `tests/vectors/` in the same commit.

Changelog:
    1.0  first wire format: sealed batches, receipts, sealed key delivery, recovery kits.
         Added since, without changing a batch, a receipt or a delivery (so no version
         change): the member-signed roster and kit-sealed epoch keys (`/v1/roster`,
         `/v1/kit-epochs`), recovery kit format 2 (format 1 still opens), key requests in
         the mailbox, snapshot attestations (`X-Snapshot-*` headers, required by the hub
         on upload), and the encrypted backup file.  See PROTOCOL.md#compatibility.
    1.1  a change carries `base`: the values its author saw in the registers it does not
         write, so every site keeps what each author wrote (history and vread read the
         same everywhere); keyed-list register names (`telecom[<16 hex>]`), so list items
         merge one by one.  1.1 sites open 1.0 batches; a 1.0 site holds 1.1 batches
         until it is upgraded.
"""

from __future__ import annotations

from typing import Final

from sync_protocol.errors import UnsupportedVersion, UpgradeRequired

PROTOCOL_VERSION: Final[tuple[int, int]] = (1, 1)
SOFTWARE_VERSION: Final[str] = "0.1.0"

#: Capabilities this build understands; v1 headers carry a `capabilities` list so
#: later additions need no break.
CAPABILITIES: Final[frozenset[str]] = frozenset({"zstd", "pad-buckets"})


def check_compatible(theirs: tuple[int, int], *, what: str = "peer") -> None:
    """Refuse `theirs` unless this side can read it.

    Raises `UnsupportedVersion` for another major version, `UpgradeRequired`
    for a newer minor version (the reader holds such input until it is upgraded).
    """
    if theirs[0] != PROTOCOL_VERSION[0]:
        raise UnsupportedVersion(
            f"{what} speaks protocol {theirs[0]}.{theirs[1]}, "
            f"this side speaks {PROTOCOL_VERSION[0]}.{PROTOCOL_VERSION[1]}",
            hint="upgrade the older side; see sync_protocol/PROTOCOL.md#compatibility",
        )
    if theirs[1] > PROTOCOL_VERSION[1]:
        raise UpgradeRequired(
            f"{what} was written with protocol {theirs[0]}.{theirs[1]}, "
            f"newer than this side's {PROTOCOL_VERSION[0]}.{PROTOCOL_VERSION[1]}",
            hint=f"upgrade chartsync on this site to a release that speaks "
            f"{theirs[0]}.{theirs[1]}; the input is held, not dropped",
        )
