"""Likely-duplicate detection: name normalisation, and pairs independent of order."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_node.fhir.patient_match import (
    DuplicatePair,
    duplicate_pairs,
    match_reasons,
    name_birthdate_tokens,
    name_key,
)
from edge_node.fhir.search_index import index_tokens

HIRAGANA = [chr(c) for c in range(0x3041, 0x3097)]
SYL = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"


def katakana(text: str) -> str:
    return "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in text)


@given(st.text(alphabet=[*HIRAGANA, " ", "\u3000"], max_size=12))
def test_kana_is_folded_and_spaces_do_not_count(text: str) -> None:
    assert name_key(katakana(text)) == name_key(text) == name_key(text.replace(" ", ""))
    assert " " not in name_key(text) and "\u3000" not in name_key(text)


@given(st.text(max_size=20))
def test_a_key_is_its_own_key(text: str) -> None:
    assert name_key(name_key(text)) == name_key(text)


def test_half_width_katakana_and_latin_case() -> None:
    assert name_key("ﾔﾏﾀﾞ ﾀﾛｳ") == name_key("やまだ たろう") == "やまだたろう"
    assert name_key("\uff39\uff21\uff2d\uff21\uff24\uff21\u3000Taro")  # full-width == "yamadataro"
    assert name_key("ジョン・スミス") == name_key("じょん すみす")
    assert name_key("山田 太郎") == "山田太郎" != name_key("やまだ たろう")


def test_family_and_given_match_the_text_of_a_name() -> None:
    by_parts = {"name": [{"family": "山田", "given": ["太郎"]}], "birthDate": "1980-04-01"}
    by_text = {"name": [{"extension": [{"url": SYL, "valueCode": "IDE"}], "text": "山田　太郎"}],
               "birthDate": "1980-04-01"}
    assert name_birthdate_tokens(by_parts) == name_birthdate_tokens(by_text) == \
        ["1980-04-01|山田太郎"]
    tokens = index_tokens("Patient", {"resourceType": "Patient", **by_text})
    assert ("name-birthdate", "1980-04-01|山田太郎") in tokens


NAMES = ["ヤマダ タロウ", "やまだたろう", "山田 太郎", "ｻﾄｳ ﾊﾅｺ", "佐藤花子"]
IDENTS = [{"system": "urn:oid:1.2.392.100495.20.3.51", "value": "1"},
          {"system": "urn:oid:1.2.392.100495.20.3.51", "value": "2"},
          {"value": "1"}]


@st.composite
def patients(draw: st.DrawFn) -> list[tuple[str, dict[str, Any]]]:
    ids = draw(st.lists(st.sampled_from([f"p{i}" for i in range(8)]), unique=True,
                        max_size=8))
    out = []
    for pid in ids:
        patient: dict[str, Any] = {"resourceType": "Patient", "id": pid}
        names = draw(st.lists(st.sampled_from(NAMES), max_size=2))
        if names:
            patient["name"] = [{"text": n} for n in names]
        if draw(st.booleans()):
            patient["birthDate"] = draw(st.sampled_from(["1980-04-01", "1980-04-02"]))
        gender = draw(st.sampled_from([None, "male", "female"]))
        if gender:
            patient["gender"] = gender
        idents = draw(st.lists(st.sampled_from(IDENTS), max_size=2))
        if idents:
            patient["identifier"] = idents
        if ids and draw(st.integers(0, 4)) == 0:
            patient["link"] = [{"other": {"reference": f"Patient/{draw(st.sampled_from(ids))}"},
                                "type": "replaced-by"}]
        out.append((pid, patient))
    return out


def brute_force(items: list[tuple[str, dict[str, Any]]]) -> list[DuplicatePair]:
    out = []
    for a_id, a in sorted(items):
        for b_id, b in sorted(items):
            if a_id >= b_id:
                continue
            if f"Patient/{b_id}" in [x["other"]["reference"] for x in a.get("link", [])] or \
                    f"Patient/{a_id}" in [x["other"]["reference"] for x in b.get("link", [])]:
                continue
            reasons = match_reasons(a, b)
            if reasons:
                out.append(DuplicatePair(a_id, b_id, reasons))
    return out


@settings(max_examples=150)
@given(patients(), st.randoms(use_true_random=False))
def test_pairs_are_symmetric_complete_and_independent_of_order(
        items: list[tuple[str, dict[str, Any]]], rnd: random.Random) -> None:
    for (_, a) in items:
        for (_, b) in items:
            assert match_reasons(a, b) == match_reasons(b, a)
    listed = duplicate_pairs(items)
    shuffled = list(items) + list(items[: len(items) // 2])  # repeats change nothing
    rnd.shuffle(shuffled)
    assert duplicate_pairs(shuffled) == listed == brute_force(items)
    assert all(p.first < p.second for p in listed)


def test_reasons_need_a_system_and_agree_on_sex_when_both_have_one() -> None:
    base = {"name": [{"text": "ヤマダ タロウ"}], "birthDate": "1980-04-01"}
    assert match_reasons({**base, "gender": "male"}, {**base}) == ("name-birthdate",)
    assert match_reasons({**base, "gender": "male"}, {**base, "gender": "female"}) == ()
    no_system = {"identifier": [{"value": "1"}]}
    assert match_reasons(no_system, no_system) == ()
    both = {**base, "identifier": IDENTS[:1]}
    assert match_reasons(both, both) == ("identifier", "name-birthdate")
