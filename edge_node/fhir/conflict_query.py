"""The review queue's request forms: conflict and head ids, list filters, paging, resolve.

Ids (stable, URL-safe, the same at every site that holds the same conflict):

    conflict id   base64url("Type/id/register"), unpadded   e.g. QWxsZXJneUludG9s...
    head id       "<site uuid>,<seq>"  — the dot of the change that wrote the value

`GET /conflicts` parameters: `patient` (Patient/id), `type`, `rule` (a name of
`conflict_reasons`), `older-than` / `newer-than` (an age: 30m, 2h, 3d, 1w), `_count`,
`cursor` (from the previous page's `next`), `_sort` (`-opened`, newest first, the
default; or `patient`: grouped by patient, newest first within one) and `lang`.
Anything else is a 400 naming the parameter.

Paging is by key, not offset: the cursor holds the sort key of the last item shown
and the next page starts after it, so conflicts opened or closed meanwhile never
make an item repeat or drop out of the rest of the listing.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge_node.errors import BadRequest, NotFound
from edge_node.fhir.conflict_reasons import RULE_NAMES
from edge_node.fhir.validation import check_type
from sync_protocol.models import REGISTER_PATTERN, RESOURCE_ID_PATTERN, RESOURCE_TYPE_PATTERN, Dot

Sort = Literal["-opened", "patient"]
SortKey = tuple[Any, ...]
_AGE: Final = re.compile(r"^(\d{1,6})([smhdw])$")
_UNIT_MS: Final = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
                   "w": 7 * 86_400_000}
_TYPE: Final = re.compile(RESOURCE_TYPE_PATTERN)
_ID: Final = re.compile(RESOURCE_ID_PATTERN)
_REGISTER: Final = re.compile(REGISTER_PATTERN)
_PARAMS: Final = ("patient", "type", "rule", "older-than", "newer-than", "_count", "cursor",
                  "_sort", "lang")
MAX_CURSOR_CHARS: Final = 400


@dataclass(frozen=True, slots=True)
class ConflictRef:
    """Which open conflict: the register of one resource."""

    resource_type: str
    resource_id: str
    register: str

    @property
    def id(self) -> str:
        return conflict_id(self.resource_type, self.resource_id, self.register)


def conflict_id(resource_type: str, resource_id: str, register: str) -> str:
    raw = f"{resource_type}/{resource_id}/{register}".encode("ascii")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def parse_conflict_id(text: str) -> ConflictRef:
    """The conflict an id names; raises `NotFound` for text that is no conflict id."""
    missing = NotFound(f"{text[:80]!r} is not a conflict id",
                       hint="take ids from GET /conflicts (they are URL-safe base64)")
    if len(text) > 300:
        raise missing
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise missing from None
    parts = raw.split("/")
    if len(parts) != 3 or not _TYPE.match(parts[0]) or not _ID.match(parts[1]) \
            or not _REGISTER.match(parts[2]):
        raise missing
    return ConflictRef(parts[0], parts[1], parts[2])


def head_id(dot: Dot) -> str:
    return f"{dot.site},{dot.seq}"


def parse_head_id(text: str) -> Dot:
    """The dot a head id names; raises `BadRequest`."""
    site, _, seq = text.partition(",")
    try:
        dot = Dot(UUID(site), int(seq))
    except ValueError:
        raise BadRequest(f"{text[:80]!r} is not a head id",
                         hint="use the `head` of a value from GET /conflicts/{id} "
                         "(\"<site uuid>,<seq>\")") from None
    if dot.seq < 1:
        raise BadRequest(f"{text[:80]!r} is not a head id", hint="its seq is 1 or more")
    return dot


def parse_age_ms(name: str, text: str) -> int:
    """An age such as `2h` in milliseconds; raises `BadRequest` naming the parameter."""
    m = _AGE.match(text)
    if m is None:
        raise BadRequest(f"{name}={text[:40]!r} is not an age",
                         hint=f"a number and a unit s, m, h, d or w, e.g. {name}=2h")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


@dataclass(frozen=True, slots=True)
class ListQuery:
    patient: str | None
    resource_type: str | None
    rule: str | None
    older_than_ms: int | None
    newer_than_ms: int | None
    count: int
    sort: Sort
    after: SortKey | None
    #: The query's own parameters (without cursor), to build the next link.
    echo: tuple[tuple[str, str], ...]


def sort_key(sort: Sort, patient: str | None, opened_ms: int, cid: str) -> SortKey:
    """Where an item sorts in a listing (newest first; grouped by patient first)."""
    if sort == "patient":
        return (patient or "", -opened_ms, cid)
    return (-opened_ms, cid)


def encode_cursor(sort: Sort, key: SortKey) -> str:
    raw = orjson.dumps([sort, *key])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode_cursor(text: str, sort: Sort) -> SortKey:
    bad = BadRequest("cursor is not a paging token of this listing",
                     hint="follow the `next` link of the previous page, with the same _sort")
    if len(text) > MAX_CURSOR_CHARS:
        raise bad
    try:
        value = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise bad from None
    shape: tuple[type, ...] = (str, int, str) if sort == "patient" else (int, str)
    if not isinstance(value, list) or len(value) != len(shape) + 1 or value[0] != sort \
            or not all(type(v) is t for v, t in zip(value[1:], shape, strict=True)):
        raise bad
    return tuple(value[1:])


def _patient(text: str) -> str:
    ref = text if text.startswith("Patient/") else f"Patient/{text}"
    if not _ID.match(ref.removeprefix("Patient/")):
        raise BadRequest(f"patient={text[:80]!r} is not a Patient reference",
                         hint="patient=Patient/<id>")
    return ref


def parse_list_query(items: Iterable[tuple[str, str]], *, default_count: int,
                     max_count: int) -> ListQuery:
    """Parse `GET /conflicts` parameters (module doc); raises `BadRequest` or
    `UnknownType` naming the first one it cannot serve."""
    values: dict[str, str] = {}
    echo: list[tuple[str, str]] = []
    for name, value in items:
        if name not in _PARAMS:
            raise BadRequest(f"parameter {name[:40]!r} is not served by GET /conflicts",
                             hint="served: " + ", ".join(_PARAMS))
        if name in values:
            raise BadRequest(f"parameter {name} is given twice", hint="give it once")
        values[name] = value
        if name != "cursor":
            echo.append((name, value))
    count = default_count
    if "_count" in values:
        text = values["_count"]
        if not text.isdigit() or not 1 <= int(text) <= max_count:
            raise BadRequest(f"_count={text[:20]!r} is not a whole number from 1 to "
                             f"{max_count}", hint="e.g. _count=20")
        count = int(text)
    sort = values.get("_sort", "-opened")
    if sort not in ("-opened", "patient"):
        raise BadRequest(f"_sort={sort[:40]!r} is not served",
                         hint="_sort=-opened (newest first) or _sort=patient")
    rule = values.get("rule")
    if rule is not None and rule not in RULE_NAMES:
        raise BadRequest(f"rule={rule[:40]!r} is not a rule name",
                         hint="one of: " + ", ".join(sorted(RULE_NAMES)))
    rtype = values.get("type")
    if rtype is not None:
        check_type(rtype)
    older = values.get("older-than")
    newer = values.get("newer-than")
    return ListQuery(
        patient=_patient(values["patient"]) if "patient" in values else None,
        resource_type=rtype, rule=rule,
        older_than_ms=parse_age_ms("older-than", older) if older is not None else None,
        newer_than_ms=parse_age_ms("newer-than", newer) if newer is not None else None,
        count=count, sort=sort,  # type: ignore[arg-type]  # checked just above
        after=_decode_cursor(values["cursor"], sort) if "cursor" in values else None,  # type: ignore[arg-type]
        echo=tuple(echo))


class ResolveBody(BaseModel):
    """`POST /conflicts/{id}/resolve`: keep one value (`choose`: its index or head id)
    or write a merged one (`value`), having seen the heads `heads`; `reason` is kept
    in the audit trail."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    choose: int | str | None = None
    value: Any = None
    heads: list[str] = Field(min_length=2, max_length=64)
    reason: str = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _one_of(self) -> ResolveBody:
        if (self.choose is None) == (self.value is None):
            raise ValueError("give exactly one of choose (an index or head id) and value "
                             "(the merged value)")
        return self


def parse_resolve_body(body: Any) -> ResolveBody:
    """The validated body; raises `BadRequest` saying what to send."""
    try:
        return ResolveBody.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadRequest(f"resolve body: {where}: {first['msg']}",
                         hint='send {"choose": 0, "heads": ["<head id>", ...], "reason": '
                         '"..."} with the heads GET /conflicts/{id} showed') from None


__all__ = ["ConflictRef", "ListQuery", "ResolveBody", "conflict_id", "encode_cursor",
           "head_id", "parse_age_ms", "parse_conflict_id", "parse_head_id",
           "parse_list_query", "parse_resolve_body", "sort_key"]
