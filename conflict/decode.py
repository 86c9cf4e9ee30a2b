"""Canonical state bytes back into a `ResourceState`: the inverse of `canonical_state`.

The edge stores each resource's merged state as `canonical.canonical_state` bytes
and turns them back into a state before merging the next change into it.  Pure:
bytes in, value out.  `state_from_canonical(canonical_state(s)) == s` for every
state `s`, and `canonical_state(state_from_canonical(raw)) == raw` for every `raw`
this module accepts (tests/conflict/test_decode.py holds both).
"""

from __future__ import annotations

from typing import Any, Final
from uuid import UUID

from conflict.canonical import STATE_FORMAT
from conflict.errors import ShapeError
from conflict.state import Head, Register, ResourceState
from sync_protocol.canonical import unpack
from sync_protocol.errors import MalformedInput
from sync_protocol.models import Dot

#: Cap on any one msgpack length in a stored state (a state is one resource).
MAX_STATE_LEN: Final = 64 * 1024 * 1024
_make: Any = tuple.__new__


def _bad(what: str) -> ShapeError:
    return ShapeError(
        f"stored state is malformed: {what}",
        hint="the replica's resources table is damaged; run `chartsync edge check` "
        "and restore from a backup or the hub",
    )


def state_from_canonical(raw: bytes) -> ResourceState:
    """Return the state whose `canonical_state` bytes are `raw`.

    Raises `ShapeError` (naming the fault, never a value) when `raw` is not the
    layout of `STATE_FORMAT` written by `canonical.canonical_state`.
    """
    try:
        top = unpack(raw, what="stored state", max_len=MAX_STATE_LEN)
    except MalformedInput as exc:
        raise _bad("not msgpack") from exc
    if type(top) is not list or len(top) != 4:
        raise _bad("not a [format, type, id, registers] array")
    fmt, rtype, rid, raw_registers = top
    if fmt != STATE_FORMAT:
        raise _bad(f"format {fmt!r}, this build reads format {STATE_FORMAT}")
    if type(rtype) is not str or type(rid) is not str or type(raw_registers) is not list:
        raise _bad("type, id or registers of the wrong kind")
    registers: dict[str, Register] = {}
    sites: dict[bytes, UUID] = {}

    def site_of(raw_site: Any) -> UUID:
        site = sites.get(raw_site)
        if site is None:
            if type(raw_site) is not bytes or len(raw_site) != 16:
                raise _bad("a site id is not 16 bytes")
            site = sites[raw_site] = UUID(bytes=raw_site)
        return site

    for item in raw_registers:
        if type(item) is not list or len(item) != 3:
            raise _bad("a register is not [name, heads, replaced]")
        name, raw_heads, raw_replaced = item
        if type(name) is not str or type(raw_heads) is not list \
                or type(raw_replaced) is not list:
            raise _bad("a register has fields of the wrong kind")
        heads = []
        for h in raw_heads:
            if type(h) is not list or len(h) != 4 or type(h[1]) is not int \
                    or type(h[2]) is not int or not (h[3] is None or type(h[3]) is bytes):
                raise _bad(f"a head of register {name!r} is malformed")
            heads.append(_make(Head, (_make(Dot, (site_of(h[0]), h[1])), h[2], h[3])))
        replaced = []
        for d in raw_replaced:
            if type(d) is not list or len(d) != 2 or type(d[1]) is not int:
                raise _bad(f"a replaced dot of register {name!r} is malformed")
            replaced.append(_make(Dot, (site_of(d[0]), d[1])))
        registers[name] = _make(Register, (tuple(heads), frozenset(replaced)))
    return ResourceState(rtype, rid, registers)
