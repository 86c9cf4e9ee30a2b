"""Canonical bytes of merged states: equal states, equal bytes.

Sites compare and digest these bytes to show they hold the same charts
(docs/design.md, "Visible agreement"), and tests compare them to prove convergence.
Layout (msgpack arrays only, so no map ordering is involved):

    state = [STATE_FORMAT, resource_type, resource_id, [register, ...]]
    register = [name, [[site(16 bytes), seq, hlc, value | nil], ...],   # heads by dot
                      [[site(16 bytes), seq], ...]]                     # replaced, sorted
    dump = [STATE_FORMAT, [state, ...]]                  # states by (type, id)

Registers are sorted by name.  `STATE_FORMAT` changes whenever this layout does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from conflict.state import ResourceState
from sync_protocol.canonical import pack_plain

#: Version of the layout above.
STATE_FORMAT: Final = 1


def _state_array(state: ResourceState) -> list[Any]:
    # The hot path of every apply (docs/performance.md): `UUID.bytes` is a Python-level
    # property, so each site's bytes are made once per state (`UUID.int` is a slot);
    # heads are kept sorted by `merge`/`decode`, but sorting a 1-tuple is skipped.
    site_bytes: dict[int, bytes] = {}

    def b(site: Any) -> bytes:
        i = site.int
        out = site_bytes.get(i)
        if out is None:
            out = site_bytes[i] = i.to_bytes(16, "big")
        return out

    registers = []
    regs = state.registers
    for name in sorted(regs):
        heads, replaced = regs[name]
        if len(heads) == 1:
            (site, seq), hlc, value = heads[0]
            head_rows = [[b(site), seq, hlc, value]]
        else:
            head_rows = [[b(h[0][0]), h[0][1], h[1], h[2]] for h in sorted(heads)]
        registers.append([name, head_rows,
                          [[b(d[0]), d[1]] for d in sorted(replaced)] if replaced else []])
    return [STATE_FORMAT, state.resource_type, state.resource_id, registers]


def canonical_state(state: ResourceState) -> bytes:
    """The canonical msgpack bytes of `state`: byte-identical for equal states."""
    return pack_plain(_state_array(state))


def canonical_dump(
    states: Mapping[tuple[str, str], ResourceState] | Iterable[ResourceState],
) -> bytes:
    """Canonical msgpack bytes of many states, sorted by (resource type, id).

    Takes the dict `merge.merge_all` returns (its keys are ignored: each state
    carries its own type and id) or any iterable of states.  Byte-identical for
    equal collections of states.
    """
    items = states.values() if isinstance(states, Mapping) else states
    ordered = sorted(items, key=lambda s: (s.resource_type, s.resource_id))
    return pack_plain([STATE_FORMAT, [_state_array(s) for s in ordered]])
