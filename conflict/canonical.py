"""Canonical bytes of merged states: equal states, equal bytes.

Sites compare and digest these bytes to show they hold the same charts
(ARCHITECTURE.md, guarantee 7), and tests compare them to prove convergence.
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
    registers = []
    for name in sorted(state.registers):
        reg = state.registers[name]
        heads = [[h.dot.site.bytes, h.dot.seq, h.hlc, h.value] for h in sorted(reg.heads)]
        replaced = [[d.site.bytes, d.seq] for d in sorted(reg.replaced)]
        registers.append([name, heads, replaced])
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
