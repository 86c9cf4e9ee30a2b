"""Merge rules per resource kind: data, one table entry per kind.

Every site reads the same table, so every site flags the same conflicts and
shows the same values.  Changing an entry changes what sites flag and display
(never what they store), so a change here ships to all sites together.

What each entry says (see `KindRules`):

* `guarded` — registers whose concurrent different values raise a conflict
  record for a clinician (docs/design.md, "Clinical merge rules").  Unlisted registers still
  keep every concurrent value as a head; the greatest `(hlc, site)` is shown and
  nothing is flagged.  A `_name` primitive-extension sibling is guarded when
  `name` is: an extension such as data-absent-reason changes what the value means.
* `choices` — FHIR choice elements (`value[x]`) by base name.  All members
  (`valueQuantity`, `valueString`, …) share the one register `value[x]`, so two
  sites choosing different types conflict instead of both being kept.
* `coupled` — registers that one edit always writes together, so they keep the
  same heads.  Used where FHIR invariants tie elements (ait-2, con-3/4/5, obs-6)
  or where the domain wants concurrent edits of one unit flagged as a whole
  (a medication order).  A group with a `precedence` member reads as one edit:
  every member shows the head of the edit that member shows
  (`state.displayed_head`), so a stopped order shows the stop's dose.
* `precedence` — for a few coded primitives, values that are shown ahead of a
  newer concurrent value while the conflict is open (first listed is strongest):
  the display errs on the safe side until a clinician resolves it.
* `keyed` — list elements merged item by item instead of as one unit
  (`KeyedList`): each item goes to a register `name[<key>]` named by a hash of
  its identity, so two sites adding different phone numbers both keep theirs,
  and a removal at one site and an addition at another both take effect.

Unknown kinds merge the same way with nothing guarded, coupled or grouped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from sync_protocol.canonical import canonical_json
from sync_protocol.models import DELETED, LIVE_VALUE

#: A keyed-list register name: the element, then 16 hex digits of the item key.
KEYED_REGISTER: Final = re.compile(r"([a-z][A-Za-z0-9]{0,63})\[([0-9a-f]{16})\]")


@dataclass(frozen=True, slots=True)
class KeyedList:
    """How a list element is split into per-item registers.

    `identity` names the item fields whose values identify an item (its key is
    a hash of them); None means the whole item is its identity.  Items with
    the same key share one register, which holds them as a canonical JSON
    array sorted by their bytes.  With `union`, a register whose concurrent
    heads differ reads as the union of their items, so a value one site wrote is
    never hidden while the conflict is open (identifiers).
    """

    identity: tuple[str, ...] | None = None
    union: bool = False

    def key_of(self, item: Mapping[str, object]) -> str:
        """The 16-hex-digit key of `item` (a JSON object): stable across sites."""
        ident: object = item if self.identity is None else [
            item.get(name) for name in self.identity]
        return hashlib.sha256(canonical_json(ident)).hexdigest()[:16]


def element_of(register: str) -> str:
    """The element a register belongs to: `telecom[0a1b…]` → `telecom`; else itself."""
    match = KEYED_REGISTER.fullmatch(register)
    return register if match is None else match.group(1)


@dataclass(frozen=True, slots=True)
class KindRules:
    """The merge rules of one resource kind (see the module docstring)."""

    guarded: frozenset[str] = frozenset()
    choices: frozenset[str] = frozenset()
    coupled: tuple[frozenset[str], ...] = ()
    precedence: Mapping[str, tuple[bytes, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    keyed: Mapping[str, KeyedList] = field(default_factory=lambda: MappingProxyType({}))

    def is_guarded(self, register: str) -> bool:
        """Whether concurrent different values of `register` raise a conflict record.

        An item register of a keyed list (`telecom[…]`) is guarded when its
        element is.
        """
        if register in self.guarded:
            return True
        if register[:1] == "_":
            return register[1:] in self.guarded
        return register[-1:] == "]" and element_of(register) in self.guarded

    def keyed_list(self, register: str) -> KeyedList | None:
        """The `KeyedList` rule of an item register (`telecom[…]`); None for others."""
        if register[-1:] != "]":
            return None
        return self.keyed.get(element_of(register))

    def register_of(self, key: str) -> str:
        """The register that holds the top-level JSON key `key`.

        A member of a choice group (`valueQuantity`, `_valueString`) maps to the
        group's register (`value[x]`, `_value[x]`); any other key is its own
        register.  Membership is "base name, then an upper-case letter": no R4
        element of the kinds below starts that way without being a member.
        """
        prefix, name = ("_", key[1:]) if key[:1] == "_" else ("", key)
        # Longest base first, so the answer never depends on set iteration order.
        for base in sorted(self.choices, key=lambda b: (-len(b), b)):
            if name.startswith(base) and "A" <= name[len(base):len(base) + 1] <= "Z":
                return f"{prefix}{base}[x]"
        return key


def _code(value: str) -> bytes:
    # Register values are canonical JSON: a FHIR `code` is a JSON string.
    return b'"' + value.encode("ascii") + b'"'


#: Every clinical kind: delete vs edit is a conflict (docs/design.md, "Clinical merge
#: rules"); modifier elements and rules change what the rest means; contained
#: resources (e.g. the Medication a MedicationRequest points at) are content.
_ALWAYS: Final = frozenset({DELETED, "modifierExtension", "implicitRules", "contained"})

#: Shown first while an edit and a delete are concurrent: never hide an allergy or a
#: problem that one branch still has (docs/design.md, "Clinical merge rules").
_LIVE_FIRST: Final = MappingProxyType({DELETED: (LIVE_VALUE,)})

#: Contact points and postal addresses merge item by item; an identifier is keyed
#: by its system, so two values of one system written concurrently land on one
#: register and are flagged (and both shown) instead of both silently kept.
_PERSON_LISTS: Final = MappingProxyType({
    "identifier": KeyedList(("system",), union=True),
    "telecom": KeyedList(("system", "value")),
    "address": KeyedList(None),
})

RULES: Final[Mapping[str, KindRules]] = MappingProxyType({
    # Demographics: any field changed at two sites is a review item, and
    # identifiers are never overwritten silently; the fields used to find duplicates
    # (kana name, birth date, sex, insurance number) are all here.  `link`
    # carries merges of duplicates (replaced-by / replaces).  Deleting a patient while
    # another site edits them is flagged like any clinical delete.  Not guarded: the
    # narrative, photo and the administrative pointers (managing organisation, GP).
    "Patient": KindRules(
        guarded=_ALWAYS | {
            "identifier", "active", "name", "telecom", "gender", "birthDate",
            "deceased[x]", "address", "maritalStatus", "multipleBirth[x]", "contact",
            "communication", "link", "extension",
        },
        choices=frozenset({"deceased", "multipleBirth"}),
        keyed=_PERSON_LISTS,
    ),
    # Staff records: contact points and identifiers merge item by item; only the
    # identifiers (licence numbers) are flagged when two sites change one system.
    "Practitioner": KindRules(
        guarded=_ALWAYS | {"identifier"},
        keyed=_PERSON_LISTS,
    ),
    # The visit itself: who, when, in what state, what kind, and why.
    "Encounter": KindRules(
        guarded=_ALWAYS | {"status", "class", "subject", "period", "diagnosis", "reasonCode"},
    ),
    # Create-only in practice; corrections are amended versions, so concurrent
    # corrections of the value, its meaning, its subject or its correction reason
    # (an extension, conflict/confirmation.py) are flagged.  obs-6: a
    # value and a data-absent-reason exclude each other, so they move together.
    "Observation": KindRules(
        guarded=_ALWAYS | {
            "status", "code", "subject", "effective[x]", "value[x]", "dataAbsentReason",
            "interpretation", "component", "bodySite", "note", "extension",
        },
        choices=frozenset({"value", "effective"}),
        coupled=(frozenset({"value[x]", "dataAbsentReason"}),),
    ),
    # Problem list: entries union by id; a retire is a status change, so
    # status edits are guarded.  con-3/4/5 tie clinical status, verification status
    # and abatement, so they move together.
    "Condition": KindRules(
        guarded=_ALWAYS | {
            "code", "clinicalStatus", "verificationStatus", "category", "severity",
            "bodySite", "subject", "note",
        },
        choices=frozenset({"onset", "abatement"}),
        coupled=(frozenset({"clinicalStatus", "verificationStatus", "abatement[x]"}),),
        precedence=_LIVE_FIRST,
    ),
    # Allergies: the substance, how dangerous, the reactions and whether it
    # is current are guarded; ait-1/ait-2 tie clinical and verification status.  While
    # two sites disagree on criticality the higher one is shown.
    "AllergyIntolerance": KindRules(
        guarded=_ALWAYS | {
            "code", "criticality", "reaction", "clinicalStatus", "verificationStatus",
            "type", "category", "patient", "note",
        },
        choices=frozenset({"onset"}),
        coupled=(frozenset({"clinicalStatus", "verificationStatus"}),),
        precedence=MappingProxyType({
            **_LIVE_FIRST,
            "criticality": (_code("high"), _code("unable-to-assess")),
        }),
    ),
    # Orders are not edited in place: status, drug, dose, supply and
    # do-not-perform are one unit, so a stop concurrent with a modify conflicts on
    # every part of it, and the stop is what is shown until the prescriber resolves.
    "MedicationRequest": KindRules(
        guarded=_ALWAYS | {
            "status", "statusReason", "intent", "doNotPerform", "medication[x]", "subject",
            "dosageInstruction", "dispenseRequest", "substitution", "priorPrescription",
            "note", "extension",
        },
        choices=frozenset({"medication", "reported"}),
        coupled=(frozenset({
            "status", "medication[x]", "dosageInstruction", "dispenseRequest", "doNotPerform",
        }),),
        precedence=MappingProxyType({
            "status": (_code("entered-in-error"), _code("cancelled"), _code("stopped")),
            "doNotPerform": (b"true",),
        }),
    ),
    # Notes and documents: amendments are new linked resources (`relatesTo`),
    # so they union by id; an in-place edit of the content concurrent with another is
    # flagged with both texts kept, never merged.  Security labels decide who may read.
    "DocumentReference": KindRules(
        guarded=_ALWAYS | {
            "content", "status", "docStatus", "subject", "relatesTo", "type", "securityLabel",
        },
    ),
})

#: The kinds with rules of their own; other kinds merge with `NO_RULES`.
SUPPORTED_TYPES: Final = frozenset(RULES)

#: Rules of kinds outside `SUPPORTED_TYPES`: nothing guarded, grouped or coupled.
NO_RULES: Final = KindRules()


def rules_for(resource_type: str) -> KindRules:
    """The rules of `resource_type`; `NO_RULES` for a kind without an entry."""
    return RULES.get(resource_type, NO_RULES)
