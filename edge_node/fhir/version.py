"""Version ids, and one version of a resource as the history keeps it.

Two kinds of version (docs/history.md):

* an **author** version is what one change's author saved; its id is derived from the
  change's dot, `<seq>-<origin site id, 32 hex digits>`, so it names the same version
  at every site of the practice;
* a **view** version is what a site showed after merging concurrent changes; its id
  is `v-` and a hash of its content, so two sites that show the same thing give it the
  same id, and an id names one content wherever it is found.

Ids of versions written before these rules are the site's version counter ("1",
"2", ...) and stay readable at the site that wrote them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from uuid import UUID

AUTHOR: Final = "author"
VIEW: Final = "view"
#: Every version id this edge hands out or has handed out (a FHIR id).
VERSION_ID: Final = re.compile(r"[0-9]{1,19}-[0-9a-f]{32}|v-[0-9a-f]{32}|[0-9]{1,19}")


def version_id(origin: UUID, seq: int) -> str:
    """The id of the author version written by change (`origin`, `seq`)."""
    return f"{seq}-{origin.hex}"


def view_id(body: bytes | None, last_updated_ms: int,
            tags: Sequence[dict[str, str]]) -> str:
    """The content-derived id of a view version (`body` None: the view is a deletion)."""
    h = hashlib.blake2b(digest_size=16, person=b"chartsync-view")
    h.update(b"deleted" if body is None else b"live" + body)
    h.update(b"|%d|" % last_updated_ms)
    h.update(b",".join(t["code"].encode() for t in tags))
    return "v-" + h.hexdigest()


@dataclass(frozen=True, slots=True)
class Version:
    """One history row."""

    resource_type: str
    resource_id: str
    #: This site's row counter of the resource (orders and pages the history).
    version: int
    origin: str
    seq: int
    user: str
    device: str
    hlc: int
    recorded_ms: int
    deleted: bool
    json: bytes | None
    hid: int
    vid: str
    kind: str
