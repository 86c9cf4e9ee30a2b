"""Likely-duplicate patients: a pure function of the stored Patient resources.

Two live patients are listed as a likely duplicate pair when

* ``identifier`` — they share an identifier with the same non-empty system and value
  (an insurance or a branch's card number), or
* ``name-birthdate`` — one of their names normalises to the same key, they have the
  same ``birthDate`` string, and their ``gender`` is the same when both have one.

A name's key (`name_key`) is its text (``HumanName.text``, else family then given
names) under NFKC, case-folded, katakana folded to hiragana, and with spaces and the
katakana middle dot removed: 「ヤマダ　タロウ」, 「やまだ たろう」 and 「ﾔﾏﾀﾞ ﾀﾛｳ」 are one key,
and 「山田 太郎」 another.  JP Core carries the kana and the kanji spelling as two
HumanNames (extension iso21090-EN-representation ``SYL`` and ``IDE``); each gives
its own key, so kana matches kana and kanji matches kanji.

Pairs already linked to each other (one ``replaced-by`` / ``replaces`` the other, i.e.
merged) are not listed.  `duplicate_pairs` depends only on the set of patients given,
never on their order, so every site that holds the same charts lists the same pairs;
the edge narrows the candidates with search tokens (`name_birthdate_tokens`, indexed
by `fhir.search_index`) and then applies this module to them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

#: Search-token parameter of the name + birth date key (`fhir.search_index`).
NAME_BIRTHDATE_PARAM: Final = "name-birthdate"
#: Reasons a pair is listed, in the order they are reported.
REASONS: Final = ("identifier", "name-birthdate")

_KATAKANA_FIRST, _KATAKANA_LAST = 0x30A1, 0x30F6  # ァ … ヶ; hiragana is 0x60 lower
_FOLDED: Final = {cp: cp - 0x60 for cp in range(_KATAKANA_FIRST, _KATAKANA_LAST + 1)}
_FOLDED.update({0x30FD: 0x309D, 0x30FE: 0x309E})  # ヽ ヾ → ゝ ゞ
_DROPPED: Final = "・"  # the katakana middle dot between a foreign given and family name


def name_key(text: str) -> str:
    """The normalised form of one full name (see the module docstring); may be ""."""
    # Dropping a space can join a letter and a combining mark that NFKC composes, and
    # NFKC can turn a spacing accent into a space: repeat until nothing changes.
    key = text
    for _ in range(4):
        folded = unicodedata.normalize("NFKC", key).casefold().translate(_FOLDED)
        step = "".join(ch for ch in folded if not ch.isspace() and ch not in _DROPPED)
        if step == key:
            break
        key = step
    return key


def _full_names(name: Mapping[str, Any]) -> list[str]:
    out = []
    text = name.get("text")
    if isinstance(text, str):
        out.append(text)
    family_value = name.get("family")
    family = family_value if isinstance(family_value, str) else ""
    given = [g for g in name.get("given") or () if isinstance(g, str)]
    if family or given:
        out.append(" ".join([family, *given]))
    return out


def name_keys(patient: Mapping[str, Any]) -> frozenset[str]:
    """Every non-empty key of the patient's names (kana and kanji spellings alike)."""
    keys: set[str] = set()
    names = patient.get("name")
    for name in names if isinstance(names, list) else ():
        if isinstance(name, dict):
            keys.update(k for k in map(name_key, _full_names(name)) if k)
    return frozenset(keys)


def _birth_date(patient: Mapping[str, Any]) -> str | None:
    value = patient.get("birthDate")
    return value if isinstance(value, str) and value else None


def name_birthdate_tokens(patient: Mapping[str, Any]) -> list[str]:
    """Index values of the name + birth date key: "<birthDate>|<name key>", sorted."""
    birth = _birth_date(patient)
    return [] if birth is None else sorted(f"{birth}|{key}" for key in name_keys(patient))


def identifier_keys(patient: Mapping[str, Any]) -> frozenset[str]:
    """"system|value" of every identifier that has both."""
    out: set[str] = set()
    idents = patient.get("identifier")
    for ident in idents if isinstance(idents, list) else ():
        if isinstance(ident, dict):
            system, value = ident.get("system"), ident.get("value")
            if isinstance(system, str) and system and isinstance(value, str) and value:
                out.add(f"{system}|{value}")
    return frozenset(out)


def linked_ids(patient: Mapping[str, Any]) -> frozenset[str]:
    """Ids of the patients this one's ``link`` names (merges in either direction)."""
    out: set[str] = set()
    links = patient.get("link")
    for link in links if isinstance(links, list) else ():
        other = link.get("other") if isinstance(link, dict) else None
        ref = other.get("reference") if isinstance(other, dict) else None
        if isinstance(ref, str) and ref.startswith("Patient/"):
            out.add(ref.removeprefix("Patient/"))
    return frozenset(out)


def match_reasons(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[str, ...]:
    """Why `a` and `b` look like one person, in `REASONS` order; () if they do not.

    Symmetric: ``match_reasons(a, b) == match_reasons(b, a)``.
    """
    reasons = []
    if identifier_keys(a) & identifier_keys(b):
        reasons.append("identifier")
    birth = _birth_date(a)
    gender_a, gender_b = a.get("gender"), b.get("gender")
    same_sex = gender_a is None or gender_b is None or gender_a == gender_b
    if birth is not None and birth == _birth_date(b) and same_sex \
            and name_keys(a) & name_keys(b):
        reasons.append("name-birthdate")
    return tuple(reasons)


@dataclass(frozen=True, slots=True, order=True)
class DuplicatePair:
    """Two patient ids, the smaller first, and why they look like one person."""

    first: str
    second: str
    reasons: tuple[str, ...]


def duplicate_pairs(patients: Iterable[tuple[str, Mapping[str, Any]]]) -> list[DuplicatePair]:
    """Likely-duplicate pairs among (id, Patient) items, sorted by (first, second).

    Depends only on the set of items: any order, any repeats of an item, same list.
    Pairs linked to each other (already merged) are left out.
    """
    by_id = dict(sorted(patients, key=lambda item: item[0]))
    groups: dict[str, set[str]] = {}
    for pid, patient in by_id.items():
        for key in identifier_keys(patient):
            groups.setdefault("i " + key, set()).add(pid)
        for key in name_birthdate_tokens(patient):
            groups.setdefault("n " + key, set()).add(pid)
    candidates = {(a, b) for group in groups.values() for a in group for b in group if a < b}
    out = []
    for first, second in sorted(candidates):
        a, b = by_id[first], by_id[second]
        if second in linked_ids(a) or first in linked_ids(b):
            continue
        reasons = match_reasons(a, b)
        if reasons:
            out.append(DuplicatePair(first, second, reasons))
    return out

__all__ = ["NAME_BIRTHDATE_PARAM", "REASONS", "DuplicatePair", "duplicate_pairs",
           "identifier_keys", "linked_ids", "match_reasons", "name_birthdate_tokens",
           "name_key", "name_keys"]
