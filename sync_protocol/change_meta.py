"""Per-change metadata in a batch's plaintext header: what the hub may know of a change.

Wire form: the header's `sites` (see `sync_protocol.dots`) plus
`changes: [[token16, flat_dots]...]`, one entry per change in sequence order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, NamedTuple

from sync_protocol.dots import Dot, DotTable, flat_dots, new_named_tuple, site_table
from sync_protocol.errors import MalformedInput

TOKEN_BYTES: Final = 16


class ChangeMeta(NamedTuple):
    """What the hub may know of one change: its record token and replaced dots."""

    token: bytes
    replaces: tuple[Dot, ...]


def encode_metas(metas: Sequence[ChangeMeta]) -> tuple[list[bytes], list[list[Any]]]:
    sites, index = site_table(m.replaces for m in metas)
    return sites, [[m.token, flat_dots(m.replaces, index)] for m in metas]


def decode_metas(raw_sites: Any, raw: Any) -> tuple[ChangeMeta, ...]:
    """The metadata of a header's changes; raises `MalformedInput` only."""
    table = DotTable(raw_sites)
    if type(raw) is not list:
        raise MalformedInput("header changes must be a list")
    out = []
    for item in raw:
        if not (type(item) is list and len(item) == 2 and type(item[0]) is bytes
                and len(item[0]) == TOKEN_BYTES):
            raise MalformedInput(f"header change entry must be [{TOKEN_BYTES}-byte token, dots]")
        out.append(new_named_tuple(ChangeMeta, (item[0], table.dots(item[1]))))
    return tuple(out)
