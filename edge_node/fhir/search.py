"""Search requests: which parameters each type serves, and parsing a query into clauses.

Served (anything else is a 400 naming the parameter, never silently ignored):

    Patient              identifier (token: system|value, |value, value, system|),
                         name (string: case-insensitive prefix of family, given or text),
                         birthdate (date: eq, ge, gt, le, lt prefixes)
    clinical types       patient (reference to a Patient), subject (reference; not on
                         AllergyIntolerance, which has no subject)
    every type           _lastUpdated (ge, gt, le, lt), _count (1..max), _cursor (paging
                         token from a next link), _format (json only),
                         _tag=urn:chartsync:tag|conflict (resources with an open
                         conflict, from the conflicts table)

Repeating a parameter ANDs its clauses; commas inside one value OR them.
Results are ordered by id (time-ordered UUIDv7 for ids minted here), and the
next page continues after the last id shown, so paging is stable while
writes arrive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from edge_node.errors import UnsupportedSearch
from edge_node.fhir.search_index import normalize_name, reference_key
from edge_node.fhir.types import PATIENT_ELEMENT, SERVED_TYPES
from sync_protocol.models import RESOURCE_ID_PATTERN

ParamKind = Literal["token", "string", "date", "reference"]
_CLINICAL: Final[dict[str, ParamKind]] = {"patient": "reference"}
SEARCH_PARAMS: Final[dict[str, dict[str, ParamKind]]] = {
    "Patient": {"identifier": "token", "name": "string", "birthdate": "date"},
    **{t: ({**_CLINICAL, "subject": "reference"} if PATIENT_ELEMENT[t] == "subject"
           else dict(_CLINICAL)) for t in SERVED_TYPES if t != "Patient"},
}
COMMON_PARAMS: Final = ("_lastUpdated", "_count", "_tag")
_CONTROL: Final = frozenset({"_lastUpdated", "_count", "_cursor", "_format", "_tag"})
#: The one `_tag` served: the tag `store.apply` puts on a resource with an open conflict.
CONFLICT_TAG: Final = "urn:chartsync:tag|conflict"
_PREFIX: Final = re.compile(r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)?(.*)$")
_DATE: Final = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_ID: Final = re.compile(RESOURCE_ID_PATTERN)
#: Sorts after every character a stored token can hold after the query prefix.
_HIGH: Final = "\U0010ffff"


@dataclass(frozen=True, slots=True)
class Range:
    """Stored token `param` with value in [low, high) (None: open), or equal to `exact`."""

    param: str
    low: str | None
    high: str | None
    exact: str | None = None


@dataclass(frozen=True, slots=True)
class Clause:
    """One parameter occurrence (`param`): a resource matches if any of `ranges` does."""

    param: str
    ranges: tuple[Range, ...]


@dataclass(frozen=True, slots=True)
class SearchQuery:
    resource_type: str
    clauses: tuple[Clause, ...]
    updated: tuple[tuple[str, int], ...]
    count: int
    cursor: str | None
    #: The query's own parameters (without _cursor), to build next links.
    echo: tuple[tuple[str, str], ...]
    #: Only resources with an open conflict (`_tag=urn:chartsync:tag|conflict`).
    conflicted: bool = False

    @property
    def patient(self) -> str | None:
        """The patient the query is restricted to, if exactly one (for the audit row)."""
        for c in self.clauses:
            if c.param == "patient" and len(c.ranges) == 1:
                return c.ranges[0].exact
        return None


def _unsupported(rtype: str, name: str) -> UnsupportedSearch:
    served = ", ".join([*SEARCH_PARAMS[rtype], *COMMON_PARAMS])
    return UnsupportedSearch(
        f"search parameter {name[:64]!r} is not supported on {rtype}",
        hint=f"supported on {rtype}: {served}; see GET /fhir/metadata")


def _bad(name: str, why: str, example: str) -> UnsupportedSearch:
    return UnsupportedSearch(f"search parameter {name}: {why}", hint=f"example: {example}")


def parse_instant_ms(text: str, name: str) -> int:
    """Milliseconds of a FHIR date or dateTime (a date means its start, UTC)."""
    try:
        if _DATE.match(text):
            parts = [int(p) for p in text.split("-")] + [1, 1]
            return int(datetime(parts[0], parts[1], parts[2], tzinfo=UTC).timestamp() * 1000)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _bad(name, "not a FHIR date or dateTime", f"{name}=ge2024-04-01T09:00:00Z"
                   ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def _token_range(name: str, value: str) -> Range:
    if "|" not in value:
        return Range(f"{name}:value", None, None, exact=value)
    system, _, code = value.partition("|")
    if not code:
        return Range(name, f"{system}|", f"{system}|{_HIGH}")
    return Range(name, None, None, exact=value)


def _date_range(prefix: str, value: str, name: str) -> Range:
    if not _DATE.match(value):
        raise _bad(name, "not a date (YYYY, YYYY-MM or YYYY-MM-DD)", f"{name}=1980-04-01")
    after = value + "."  # "-" < "." : sorts after every longer date inside `value`
    bounds = {"eq": Range(name, value, after), "ge": Range(name, value, None),
              "gt": Range(name, after, None), "le": Range(name, None, after),
              "lt": Range(name, None, value)}
    if prefix not in bounds:
        raise _bad(name, f"prefix {prefix!r} is not supported (eq, ge, gt, le, lt)",
                   f"{name}=ge1980-01-01")
    return bounds[prefix]


def _reference(value: str, name: str, want_patient: bool) -> Range:
    ref = reference_key(value) if "/" in value else (
        f"Patient/{value}" if _ID.match(value) else None)
    if ref is None or (want_patient and not ref.startswith("Patient/")):
        raise _bad(name, "not a reference to a Patient" if want_patient else "not a reference",
                   f"{name}=Patient/0190c1a2-7b3e-7000-8000-000000000001")
    return Range(name, None, None, exact=ref)


def parse_search(resource_type: str, items: Iterable[tuple[str, str]], *, default_count: int,
                 max_count: int) -> SearchQuery:
    """Parse query parameters for a search of `resource_type`.

    Raises `UnsupportedSearch` (400) naming the first parameter or value it
    cannot serve.
    """
    served = SEARCH_PARAMS[resource_type]
    clauses: list[Clause] = []
    updated: list[tuple[str, int]] = []
    count, cursor = default_count, None
    conflicted = False
    echo: list[tuple[str, str]] = []
    for name, value in items:
        if name != "_cursor":
            echo.append((name, value))
        base, _, modifier = name.partition(":")
        if base == "_count":
            if not value.isdigit() or not 1 <= int(value) <= max_count:
                raise _bad(name, f"must be a whole number from 1 to {max_count}", "_count=50")
            count = int(value)
        elif base == "_cursor":
            if not _ID.match(value):
                raise _bad(name, "is not a paging token from a next link", "follow the link")
            cursor = value
        elif base == "_tag":
            if value != CONFLICT_TAG or modifier:
                raise _bad(name, f"only {CONFLICT_TAG} is served (resources with an open "
                           "conflict)", f"_tag={CONFLICT_TAG}")
            conflicted = True
        elif base == "_format":
            if value not in ("json", "application/json", "application/fhir+json"):
                raise _bad(name, "only JSON is served", "_format=json")
        elif base == "_lastUpdated":
            m = _PREFIX.match(value)
            assert m is not None
            prefix = m.group(1) or "eq"
            if prefix not in ("ge", "gt", "le", "lt"):
                raise _bad(name, "use a ge, gt, le or lt prefix", "_lastUpdated=ge2024-04-01")
            updated.append((prefix, parse_instant_ms(m.group(2), name)))
        elif base in served and not modifier:
            clauses.append(_clause(resource_type, base, served[base], value))
        else:
            raise _unsupported(resource_type, name)
    return SearchQuery(resource_type, tuple(clauses), tuple(updated), count, cursor,
                       tuple(echo), conflicted)


def _clause(rtype: str, name: str, kind: ParamKind, value: str) -> Clause:
    parts = [v for v in value.split(",") if v]
    if not parts:
        raise _bad(name, "has no value", f"{name}=...")
    ranges: list[Range] = []
    for part in parts:
        if kind == "token":
            ranges.append(_token_range(name, part))
        elif kind == "string":
            low = normalize_name(part)
            ranges.append(Range(name, low, low + _HIGH))
        elif kind == "date":
            m = _PREFIX.match(part)
            assert m is not None
            ranges.append(_date_range(m.group(1) or "eq", m.group(2), name))
        else:
            ranges.append(_reference(part, name, want_patient=(name == "patient")))
    return Clause(name, tuple(ranges))
