"""Rule names of open conflicts, per resource type and register."""

from __future__ import annotations

from conflict import RULES as MERGE_RULES
from edge_node.fhir.conflict_reasons import DEFAULT_RULE, RULE_NAMES, RULES, rule_for


def test_the_clinical_rules() -> None:
    assert rule_for("AllergyIntolerance", "criticality") == "allergy-severity"
    assert rule_for("AllergyIntolerance", "_criticality") == "allergy-severity"
    assert rule_for("MedicationRequest", "status") == "order-stop-vs-modify"
    assert rule_for("MedicationRequest", "dosageInstruction") == "order-stop-vs-modify"
    for register in ("birthDate", "name", "gender"):
        assert rule_for("Patient", register) == "demographics"
    assert rule_for("Patient", "identifier") == "identifier"
    assert rule_for("DocumentReference", "content") == "note-text"
    assert rule_for("Condition", "@deleted") == "delete-vs-edit"
    assert rule_for("Observation", "value[x]") == DEFAULT_RULE
    assert rule_for("Unknown", "anything") == DEFAULT_RULE
    assert DEFAULT_RULE in RULE_NAMES


def test_every_named_register_is_guarded_by_the_merge_rules() -> None:
    """A rule for a register that never conflicts would be dead text."""
    for (rtype, register) in RULES:
        kinds = MERGE_RULES.values() if rtype == "*" else [MERGE_RULES[rtype]]
        assert any(k.is_guarded(register) for k in kinds), (rtype, register)
