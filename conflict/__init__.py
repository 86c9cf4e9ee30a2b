"""Deterministic merge of FHIR resource changes: the functional core of chartsync.

Values in, values out: no I/O, clock, randomness, logging or event loop (docs/design.md,
"Layering").
Every site merges the same changes with the same rules and reaches the same
state, whatever the order or number of times changes arrive.

    state.py        Head, Register, ResourceState; displayed, shown, is_deleted
    rules.py        per-kind rules as data: guarded, choice groups, coupled, precedence,
                    keyed lists
    merge.py        merge, merge_all
    conflicts.py    ConflictRecord, conflicts (derived from state, each naming its rule)
    patient_rules.py cross_resource_conflicts: "no known allergies" vs an allergy
    confirmation.py check_update: confirmed records change only by correction
    shape.py        split_resource, check_elements (resource JSON → registers)
    materialize.py  materialize, materialize_json (registers → resource JSON)
    authored.py     base_of, authored_json (what the author of a change saved)
    plan.py         plan_set, plan_delete (local edit → elements and replaces)
    canonical.py    canonical_state, canonical_dump (equal states, equal bytes)
    errors.py       CoreError ─ MergeError (WrongResource, DotReused), ShapeError
"""

from conflict.authored import authored_json, base_of
from conflict.canonical import STATE_FORMAT, canonical_dump, canonical_state
from conflict.confirmation import Refusal, check_update, is_confirmed, stamp_confirmer
from conflict.conflicts import ConflictRecord, all_conflicts, conflicts
from conflict.errors import CoreError, DotReused, MergeError, ShapeError, WrongResource
from conflict.materialize import element_json, materialize, materialize_json
from conflict.merge import ResourceKey, merge, merge_all
from conflict.patient_rules import cross_resource_conflicts
from conflict.plan import Plan, plan_delete, plan_set
from conflict.rules import NO_RULES, RULES, SUPPORTED_TYPES, KindRules, rules_for
from conflict.shape import check_elements, split_resource
from conflict.state import Head, Register, ResourceState, displayed, is_deleted, shown

__all__ = [
    "NO_RULES",
    "RULES",
    "STATE_FORMAT",
    "SUPPORTED_TYPES",
    "ConflictRecord",
    "CoreError",
    "DotReused",
    "Head",
    "KindRules",
    "MergeError",
    "Plan",
    "Refusal",
    "Register",
    "ResourceKey",
    "ResourceState",
    "ShapeError",
    "WrongResource",
    "all_conflicts",
    "authored_json",
    "base_of",
    "canonical_dump",
    "canonical_state",
    "check_elements",
    "check_update",
    "conflicts",
    "cross_resource_conflicts",
    "displayed",
    "element_json",
    "is_confirmed",
    "is_deleted",
    "materialize",
    "materialize_json",
    "merge",
    "merge_all",
    "plan_delete",
    "plan_set",
    "rules_for",
    "shown",
    "split_resource",
    "stamp_confirmer",
]
