"""A write the FHIR API asks of the store, and who asks it.

The API and Bundle code build these; `store.writer` applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sync_protocol.models import Dot

Action = Literal["create", "update", "delete"]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks: the authenticated user, their role, device header and client address."""

    user_id: str
    role: str
    device: str
    client: str


@dataclass(frozen=True, slots=True)
class RegisterResolve:
    """Close the open conflict on one register, as a clinician decided it.

    The write replaces every head of `register` (and of the registers coupled to it)
    and nothing else but `@deleted`; it is refused (409) unless the register's heads
    are exactly `seen`, the ones the clinician was shown.  `chose` (a head id, or
    "merged") and `reason` go into the write's audit row.
    """

    register: str
    seen: frozenset[Dot]
    chose: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class WriteOp:
    """One write: create / update (PUT, may create) / delete of one resource.

    `resource` is validated JSON with `id` set (None for a delete);
    `if_match` the version the client last saw, if it sent one.
    """

    action: Action
    resource_type: str
    resource_id: str
    resource: dict[str, Any] | None
    if_match: str | None = None
    #: An update that replaces every value of each element it writes, closing open
    #: conflicts there (`$resolve`); a plain update replaces only the value it read.
    resolve: bool = False
    #: Resolve one register's conflict only (the review queue); `resource` is the
    #: resource as it reads with the decided value, or None with a delete that closes
    #: an edit-versus-delete conflict as deleted.
    resolves: RegisterResolve | None = None
    #: A patient merge (or its undo) re-pointing the record's patient reference: the
    #: one in-place change a confirmed record (note, final result, issued order) allows,
    #: since it moves the record to the patient it belongs to without touching content.
    repoints_patient: bool = False
