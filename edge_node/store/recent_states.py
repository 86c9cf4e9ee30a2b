"""The writer's memory of recently committed resource states (`RecentStates`).

The writer (`store.writer`) is the only writer of the `resources` table, so it can
keep the committed state of the resources it last wrote or loaded: an update of a
chart written moments ago needs no SELECT and no decoding.  Bounded (`max_entries`,
the writer's `recent_states` argument), least recently used out.  The writer
updates it only after a COMMIT succeeds (`remember`) and empties it when rows may
have changed behind it (`clear`: a failed commit, exclusive work).  `load_states`
reads the states it does not hold, in one SELECT.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any, Final

import orjson

from conflict.decode import state_from_canonical
from edge_node.store.apply import Key, Rows, Stored

_LOAD: Final = (
    "SELECT r.type, r.id, r.version, r.deleted, r.state, r.last_updated_ms, r.vid "
    "FROM json_each(?) AS j JOIN resources AS r "
    "ON r.type = json_extract(j.value, '$[0]') AND r.id = json_extract(j.value, '$[1]')"
)


def load_states(conn: sqlite3.Connection, keys: Iterable[Key]) -> list[Any]:
    """The stored rows (type, id, version, deleted, state, last_updated_ms, vid) of `keys`."""
    arg = orjson.dumps(sorted(keys)).decode()
    return conn.execute(_LOAD, (arg,)).fetchall()


class RecentStates:
    """(state, canonical bytes) of recently committed resources, least recently used out."""

    __slots__ = ("_entries", "_max")

    def __init__(self, max_entries: int) -> None:
        self._entries: OrderedDict[Key, tuple[Stored, bytes]] = OrderedDict()
        self._max = max_entries

    def clear(self) -> None:
        self._entries.clear()

    def lookup(self, keys: Iterable[Key], found: dict[Key, Stored], raw: dict[Key, bytes]
               ) -> list[Key]:
        """Put the remembered ones of `keys` in `found` and `raw`; return the others."""
        entries = self._entries
        missing = []
        for key in keys:
            hit = entries.get(key)
            if hit is None:
                missing.append(key)
            else:
                found[key], raw[key] = hit
                entries.move_to_end(key)
        return missing

    def loaded(self, rows: Sequence[Any], found: dict[Key, Stored], raw: dict[Key, bytes]
               ) -> None:
        """Decode rows of `load_states` into `found` and `raw`, and remember them."""
        entries = self._entries
        for r in rows:
            key, state = (r[0], r[1]), bytes(r[4])
            found[key] = Stored(state_from_canonical(state), int(r[2]), bool(r[3]), int(r[5]),
                                r[6])
            raw[key] = state
            entries[key] = (found[key], state)
        self._trim()

    def remember(self, view: dict[Key, Stored | None], rows: Rows) -> None:
        """After a COMMIT: the group's written resources as they are now stored."""
        entries = self._entries
        for key, row in rows.resources.items():
            stored = view.get(key)
            if stored is None:
                continue
            entries[key] = (stored, row[5])
            entries.move_to_end(key)
        self._trim()

    def _trim(self) -> None:
        entries = self._entries
        while len(entries) > self._max:
            entries.popitem(last=False)


__all__ = ["RecentStates", "load_states"]
