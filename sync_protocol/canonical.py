"""Canonical encodings: one byte string for one value.

* `canonical_json` — element values and resources: sorted keys, no whitespace,
  UTF-8 (orjson; fast, and its float and string output is deterministic).
* `canonical_pack` — headers, receipts, digests and dumps: msgpack with map keys
  sorted at every level, bin for bytes, and the smallest integer encodings.

Equal values give equal bytes, so comparisons, hashes and signatures can work
on bytes.
"""

from __future__ import annotations

from typing import Any, cast

import msgpack
import orjson

from sync_protocol.errors import MalformedInput

_JSON_OPTIONS = orjson.OPT_SORT_KEYS


def canonical_json(value: Any) -> bytes:
    """Return the canonical JSON bytes of `value`; raises `MalformedInput` if it has none."""
    try:
        return orjson.dumps(value, option=_JSON_OPTIONS)
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise MalformedInput(f"value has no canonical JSON form: {exc}") from exc


def parse_json(raw: bytes | str) -> Any:
    """Parse JSON text; raises `MalformedInput` with the position of the fault."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedInput(f"invalid JSON: {exc}") from exc


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_sorted(v) for v in value]
    return value


def canonical_pack(value: Any) -> bytes:
    """Return canonical msgpack bytes of `value` (maps sorted by key at every level)."""
    return cast(bytes, msgpack.packb(_sorted(value), use_bin_type=True))


def pack_plain(value: Any) -> bytes:
    """msgpack without re-sorting, for values already built in canonical order."""
    return cast(bytes, msgpack.packb(value, use_bin_type=True))


def unpack(raw: bytes, *, what: str, max_len: int) -> Any:
    """Decode msgpack `raw`; raises `MalformedInput`/`TooLarge` only.

    Container and string lengths are capped by `max_len` so a small input cannot
    claim a huge allocation.
    """
    try:
        return msgpack.unpackb(
            raw, raw=False, strict_map_key=True, use_list=True,
            max_bin_len=max_len, max_str_len=max_len,
            max_array_len=max_len, max_map_len=max_len, max_ext_len=0,
        )
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError,
            TypeError, UnicodeDecodeError) as exc:
        raise MalformedInput(f"{what} is not valid msgpack: {type(exc).__name__}") from exc
