"""Merge changes into resource states: the one write path of every replica.

For each register a change writes:

    replaced' = replaced | set(change.replaces[register])
    heads'    = {h for h in heads if h.dot not in replaced'}
                | ({Head(change.dot, change.hlc, value)} if change.dot not in replaced'
                   else {})

So the heads of a register are the dots of the applied changes that write it,
minus every dot those changes replace — a function of the *set* of changes.
Merging is therefore commutative, associative and idempotent: any order, with
any duplicates, gives equal states.  Registers a change does not write are
untouched (contexts replace per element, never per resource).

This is the hot path of applying a pulled batch (docs/performance.md): it builds
tuples in C, hashes as few dots as it can (a `UUID` hashes in Python), and
sorts only when a register really holds several heads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from conflict.errors import DotReused, WrongResource
from conflict.state import Head, Register, ResourceState
from sync_protocol.models import Change, Dot

#: Key of a resource in bulk results: (resourceType, id).
ResourceKey = tuple[str, str]

_NO_DOTS: frozenset[Dot] = frozenset()
_NO_HEADS: tuple[Head, ...] = ()
# Builds a NamedTuple (Dot, Head, Register) from a tuple of its fields in C, skipping
# the generated Python-level __new__: about 2.5x cheaper, and this loop builds several
# per change.
_make: Any = tuple.__new__


def merge(state: ResourceState | None, change: Change) -> ResourceState:
    """Return `state` with `change` applied; `state` None means "not seen yet".

    Idempotent (merging a change again returns an equal state) and commutative
    (the result depends only on the set of changes merged).  Never changes
    `state`.  Raises `WrongResource` if `change` is about another resource, and
    `DotReused` if a different change with the same dot is already a head (an
    origin reused a sequence number: stop applying that origin and report it).
    """
    rtype = change.resource_type
    rid = change.resource_id
    if state is None:
        registers: dict[str, Register] = {}
    else:
        if state.resource_type != rtype or state.resource_id != rid:
            raise WrongResource(
                f"change {change.origin}:{change.seq} is for {rtype}/{rid}, "
                f"not {state.resource_type}/{state.resource_id}",
                hint="merge each change into the state keyed by its own resource type and id",
            )
        registers = dict(state.registers)

    origin = change.origin
    seq = change.seq
    dot: Dot = _make(Dot, (origin, seq))
    hlc = change.hlc
    seen_in = change.replaces.get
    register_of = registers.get
    for name, value in change.elements.items():
        seen = seen_in(name)
        reg = register_of(name)
        if reg is None:
            replaced = frozenset(seen) if seen else _NO_DOTS
            if replaced and dot in replaced:
                registers[name] = _make(Register, (_NO_HEADS, replaced))
            else:
                registers[name] = _make(Register, ((_make(Head, (dot, hlc, value)),), replaced))
            continue

        old_heads, old_replaced = reg
        heads, replaced = reg
        if seen:
            replaced = old_replaced.union(seen)
            # Heads are never in the old `replaced`: only a grown set can remove any.
            if len(replaced) == len(old_replaced):
                replaced = old_replaced
            elif len(heads) == 1:
                if heads[0].dot in replaced:
                    heads = _NO_HEADS
            else:
                heads = tuple([h for h in heads if h.dot not in replaced])
        if replaced and dot in replaced:
            pass  # a change that saw this one is already merged: it stays superseded
        elif not heads:
            heads = (_make(Head, (dot, hlc, value)),)
        else:
            for h in heads:
                hdot = h.dot
                if hdot.seq == seq and hdot.site == origin:  # the int test first: cheaper
                    if h.hlc != hlc or h.value != value:
                        raise DotReused(
                            f"{rtype}/{rid} register {name}: dot {origin}:{seq} "
                            "already holds a different write",
                            hint="an origin reused a sequence number; stop applying its "
                            "changes and check that site's outbox",
                        )
                    break  # a duplicate: already a head
            else:
                heads = tuple(sorted((*heads, _make(Head, (dot, hlc, value)))))
        if heads is not old_heads or replaced is not old_replaced:
            registers[name] = _make(Register, (heads, replaced))
    return ResourceState(rtype, rid, registers)


def merge_all(
    changes: Iterable[Change],
    states: dict[ResourceKey, ResourceState] | None = None,
) -> dict[ResourceKey, ResourceState]:
    """Merge `changes` into `states` (a new dict if None) and return that dict.

    The dict maps (resourceType, id) to the state.  The result depends only on
    the set of changes merged (and the states passed in).  `states` itself is
    updated in place — it is the caller's working copy; the states in it are
    replaced, never changed.  Raises what `merge` raises; changes before the
    failing one stay merged.
    """
    out: dict[ResourceKey, ResourceState] = {} if states is None else states
    for change in changes:
        key = (change.resource_type, change.resource_id)
        out[key] = merge(out.get(key), change)
    return out
