"""記録の確定: confirmed records change only through lifecycle moves or corrections."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conflict import check_update, is_confirmed, stamp_confirmer
from conflict.confirmation import (
    CONFIRMED_STATUS,
    CORRECTION_CONFIRMER,
    CORRECTION_REASON,
    correction_reason,
)
from tests.conflict.practice import PROPERTY


def obs(status: str = "final", value: float = 120, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": "o1", "status": status,
            "code": {"text": "血圧"}, "valueQuantity": {"value": value}, **extra}


def reason(text: str) -> list[dict[str, Any]]:
    return [{"url": CORRECTION_REASON, "valueString": text}]


def note(doc_status: str | None = None, data: str = "5YaF") -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "DocumentReference", "id": "d1", "status": "current",
                           "content": [{"attachment": {"data": data}}]}
    if doc_status is not None:
        out["docStatus"] = doc_status
    return out


def order(status: str = "active", dose: str = "1錠", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": "m1", "status": status,
            "intent": "order", "dosageInstruction": [{"text": dose}], **extra}


def test_drafts_change_freely() -> None:
    assert check_update(obs("preliminary"), obs("final", 130)) is None
    assert check_update(note("preliminary"), note("final", "5aSW")) is None
    assert check_update(order("draft"), order("active", "2錠")) is None
    assert check_update(None, obs()) is None


def test_a_confirmed_value_is_not_changed_in_place() -> None:
    refusal = check_update(obs(), obs(value=130))
    assert refusal is not None
    assert "Observation/o1" in refusal.message and "valueQuantity" in refusal.message
    assert "130" not in refusal.message  # never the value
    assert "amended" in refusal.hint and CORRECTION_REASON in refusal.hint


def test_a_correction_with_a_reason_is_allowed() -> None:
    assert check_update(obs(), obs("amended", 130, extension=reason("再測定"))) is None
    assert check_update(obs(), obs("corrected", 130, extension=reason("転記ミス"))) is None


@pytest.mark.parametrize("new", [
    obs("amended", 130),                                   # no reason
    obs("final", 130, extension=reason("再測定")),          # not a correction status
    obs("amended", 130, extension=reason("  ")),           # blank reason
])
def test_a_correction_needs_its_status_and_a_reason(new: dict[str, Any]) -> None:
    assert check_update(obs(), new) is not None


def test_a_second_correction_needs_a_reason_of_its_own() -> None:
    first = obs("amended", 130, extension=reason("再測定"))
    assert check_update(first, obs("amended", 131, extension=reason("再測定"))) is not None
    assert check_update(first, obs("amended", 131, extension=reason("機器交換"))) is None


def test_lifecycle_moves_need_no_correction() -> None:
    assert check_update(obs(), obs("entered-in-error")) is None
    assert check_update(order(), order("stopped", statusReason={"text": "副作用"})) is None
    assert check_update(note(), {**note(), "status": "superseded"}) is None
    assert check_update(note(), {**note(), "docStatus": "entered-in-error"}) is None


def test_an_issued_order_changes_by_correction_or_a_new_order() -> None:
    refusal = check_update(order(), order(dose="2錠"))
    assert refusal is not None and "priorPrescription" in refusal.hint
    assert check_update(order(), order(dose="2錠", extension=reason("用量調整"))) is None


def test_a_note_is_append_only() -> None:
    for before in (note(), note("final"), note("amended")):
        refusal = check_update(before, {**before, "content": [{"attachment": {"data": "5aSW"}}]})
        assert refusal is not None
        assert "append-only" in refusal.message
        assert "relatesTo" in refusal.hint and "DocumentReference/d1" in refusal.hint
    # Not even with a correction reason: an amendment is a new resource.
    assert check_update(note(), {**note("amended", "5aSW"), "extension": reason("x")})


def test_confirmed_statuses() -> None:
    assert is_confirmed(note()) and not is_confirmed(note("preliminary"))
    for kind, statuses in CONFIRMED_STATUS.items():
        for status in statuses:
            assert is_confirmed({"resourceType": kind, "status": status})
        assert not is_confirmed({"resourceType": kind, "status": "draft"})
        assert not is_confirmed({"resourceType": kind, "status": "preliminary"})
    assert not is_confirmed({"resourceType": "Patient", "active": True})


def test_the_confirmer_is_stamped_and_replaces_a_claimed_one() -> None:
    sent = obs("amended", 130, extension=[*reason("再測定"),
                                          {"url": CORRECTION_CONFIRMER, "valueString": "x"}])
    stamped = stamp_confirmer(sent, "dr-sato")
    confirmers = [e["valueString"] for e in stamped["extension"]
                  if e["url"] == CORRECTION_CONFIRMER]
    assert confirmers == ["dr-sato"]
    assert correction_reason(stamped) == "再測定"
    assert sent["extension"][1]["valueString"] == "x"  # the input is not changed


ELEMENTS = st.sampled_from(["valueQuantity", "code", "subject", "note", "interpretation",
                            "effectiveDateTime", "component"])


@PROPERTY
@given(element=ELEMENTS, value=st.text(min_size=1, max_size=5),
       status=st.sampled_from(sorted(CONFIRMED_STATUS["Observation"])))
def test_no_content_element_of_a_confirmed_record_changes_without_a_fresh_reason(
        element: str, value: str, status: str) -> None:
    before = obs(status)
    after = {**before, element: {"text": value}}
    assert check_update(before, after) is not None
    fixed = {**after, "status": "corrected", "extension": reason(value + "!")}
    assert check_update(before, fixed) is None
