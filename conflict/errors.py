"""The one error tree of the merge core.

    CoreError (ValueError)      input the merge core refuses
    ├── MergeError              a change that cannot merge into the given state
    │   ├── WrongResource       the change is about another resource than the state
    │   └── DotReused           two different changes carry the same dot (site, seq)
    └── ShapeError              a resource or element value with no register form

Each class has a stable `code` and says whether a retry can help (never, here: the
same input gives the same refusal; the core is deterministic).  Messages carry
resource types, ids, register names and dots, and say what to do; they never
carry element values (chart data).
"""

from __future__ import annotations

from typing import ClassVar

from sync_protocol.errors import ActionableError


class CoreError(ActionableError, ValueError):
    """Input the merge core refuses.  See the module docstring for the tree."""

    code: ClassVar[str] = "conflict_core"
    retryable: ClassVar[bool] = False


class MergeError(CoreError):
    """A change that cannot merge into the given state."""

    code = "merge_refused"


class WrongResource(MergeError):
    """The change is about another resource than the state it was merged into."""

    code = "wrong_resource"


class DotReused(MergeError):
    """Two different changes carry the same dot: an origin reused a sequence number."""

    code = "dot_reused"


class ShapeError(CoreError):
    """A FHIR resource or element value that has no register form."""

    code = "bad_shape"
