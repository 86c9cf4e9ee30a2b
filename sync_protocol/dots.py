"""Dots (one write: origin site and its sequence number) and their compact wire form.

A batch lists its sites once (`sites`, sorted 16-byte ids); a dot list is then
a flat integer list `[site_index, seq, site_index, seq, ...]` in canonical
order.  `sync_protocol.wire` (change lists) and `sync_protocol.change_meta`
(header metadata) both write and read dots this way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Final, NamedTuple
from uuid import UUID

from pydantic import Field

from sync_protocol.errors import MalformedInput

_MAX_SEQ: Final = 1 << 63


class Dot(NamedTuple):
    """One write: the origin site and its per-site change sequence number."""

    site: UUID
    seq: Annotated[int, Field(ge=1, lt=1 << 63)]


def _dot_key(dot: Dot) -> tuple[bytes, int]:
    return (dot.site.bytes, dot.seq)


def sorted_dots(dots: Any) -> tuple[Dot, ...]:
    """Dots in canonical order (site bytes, then seq), without repeats."""
    return tuple(sorted(set(dots), key=_dot_key))


def site_table(dot_sets: Iterable[Iterable[Dot]]) -> tuple[list[bytes], dict[int, int]]:
    """Sorted site ids, and each site's index keyed by `UUID.int`.

    Keyed by the integer because `UUID.__hash__` runs in Python and this is the
    hot path of sealing; a UUID's integer orders exactly like its bytes.
    """
    ints = sorted({d.site.int for dots in dot_sets for d in dots})
    return [i.to_bytes(16, "big") for i in ints], {i: n for n, i in enumerate(ints)}


def flat_dots(dots: Iterable[Dot], index: dict[int, int]) -> list[int]:
    """Dots as [site_index, seq, ...]; `dots` must already be in canonical order."""
    out: list[int] = []
    for d in dots:
        out += (index[d.site.int], d.seq)
    return out


#: NamedTuple construction through its Python-level __new__ costs ~0.5 µs; the
#: fields are already checked, so build the tuple directly.
new_named_tuple: Final = tuple.__new__


class DotTable:
    """A batch's site table, and the flat dot lists already decoded against it.

    Raises `MalformedInput` only.
    """

    __slots__ = ("dot_cache", "sites")

    def __init__(self, raw_sites: Any) -> None:
        if type(raw_sites) is not list or not all(
                type(s) is bytes and len(s) == 16 for s in raw_sites):
            raise MalformedInput("sites must be a list of 16-byte site ids")
        if raw_sites != sorted(set(raw_sites)):
            raise MalformedInput("sites must be sorted and distinct")
        self.sites = [UUID(bytes=s) for s in raw_sites]
        #: Flat dot lists seen in this batch → their decoded tuples (edits in one
        #: batch often replace the same heads).
        self.dot_cache: dict[tuple[int, ...], tuple[Dot, ...]] = {}

    def dots(self, flat: Any) -> tuple[Dot, ...]:
        if type(flat) is not list:
            raise MalformedInput("dots must be a flat list of [site_index, seq] pairs")
        n = len(flat)
        if n == 2:  # the common case: one head replaced
            idx, seq = flat
            if type(idx) is int and type(seq) is int and 0 <= idx < len(self.sites) \
                    and 1 <= seq < _MAX_SEQ:
                return (new_named_tuple(Dot, (self.sites[idx], seq)),)
        elif n == 0:
            return ()
        key = tuple(flat)
        try:
            cached = self.dot_cache.get(key)
        except TypeError:  # an unhashable item: not a flat list of integers
            raise MalformedInput("dots must be a flat list of [site_index, seq] pairs") from None
        if cached is not None:
            return cached
        if n % 2:
            raise MalformedInput("dots must be a flat list of [site_index, seq] pairs")
        sites, n_sites = self.sites, len(self.sites)
        out = []
        prev: tuple[int, int] = (-1, 0)
        for i in range(0, n, 2):
            idx, seq = flat[i], flat[i + 1]
            if not (type(idx) is int and type(seq) is int and 0 <= idx < n_sites
                    and 1 <= seq < _MAX_SEQ and (idx, seq) > prev):
                raise MalformedInput("a dot is [site_index, seq >= 1], sorted and distinct")
            prev = (idx, seq)
            out.append(new_named_tuple(Dot, (sites[idx], seq)))
        result = self.dot_cache[key] = tuple(out)
        return result
