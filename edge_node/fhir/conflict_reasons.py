"""Why an open conflict matters to a clinician: (resource type, register) → rule name.

A pure table.  Each rule name has a clinical reason in every message catalog
(`edge_node/api/locale/*.json`, key `reason.<rule>`), which the review queue shows
next to the conflict.  A register not listed falls to its kind's entry, then to
`guarded-element`.  A primitive-extension sibling (`_birthDate`) has the rule of the
element it extends.  Which registers raise conflicts at all is `conflict.rules`; this
table only names them for people.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from sync_protocol.models import DELETED

DEFAULT_RULE: Final = "guarded-element"

#: (resource type or "*" for every type, register) → rule name.
RULES: Final = MappingProxyType({
    ("*", DELETED): "delete-vs-edit",
    ("*", "identifier"): "identifier",
    ("AllergyIntolerance", "criticality"): "allergy-severity",
    ("AllergyIntolerance", "code"): "allergy-substance",
    ("AllergyIntolerance", "reaction"): "allergy-substance",
    ("MedicationRequest", "status"): "order-stop-vs-modify",
    ("MedicationRequest", "dosageInstruction"): "order-stop-vs-modify",
    ("MedicationRequest", "medication[x]"): "order-stop-vs-modify",
    ("MedicationRequest", "dispenseRequest"): "order-stop-vs-modify",
    ("MedicationRequest", "doNotPerform"): "order-stop-vs-modify",
    ("Patient", "birthDate"): "demographics",
    ("Patient", "name"): "demographics",
    ("Patient", "gender"): "demographics",
    ("DocumentReference", "content"): "note-text",
})

#: Every rule name, the default included (each has a `reason.<rule>` catalog entry).
RULE_NAMES: Final = frozenset({*RULES.values(), DEFAULT_RULE})


def rule_for(resource_type: str, register: str) -> str:
    """The rule name of an open conflict on `register` of a `resource_type` resource."""
    name = register[1:] if register.startswith("_") else register
    return RULES.get((resource_type, name)) or RULES.get(("*", name)) or DEFAULT_RULE


def reason_key(rule: str) -> str:
    """The catalog key of `rule`'s clinical reason."""
    return f"reason.{rule}"


__all__ = ["DEFAULT_RULE", "RULES", "RULE_NAMES", "reason_key", "rule_for"]
