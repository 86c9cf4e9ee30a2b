"""Side-by-side JSON values with the parts that differ marked, for a reviewing clinician.

`diff_lines(values)` pretty-prints each value (two-space indent, keys sorted) as
lines, and marks a line when what it shows is not the same in every value: a
member or array item another value lacks or holds differently.  A container
shown the same everywhere is never marked inside; a container that differs is
opened and only its differing members are marked (plus its own line when another
value has no such container there).  Pure: values in, lines out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

Path = tuple[str | int, ...]
_MISSING: Final = object()


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a pretty-printed value: its nesting depth, text, and whether it differs."""

    depth: int
    text: str
    differs: bool


def _at(value: Any, path: Path) -> Any:
    for step in path:
        in_dict = isinstance(step, str) and isinstance(value, dict) and step in value
        in_list = isinstance(step, int) and isinstance(value, list) and step < len(value)
        if not (in_dict or in_list):
            return _MISSING
        value = value[step]
    return value


def _scalar(value: Any) -> str:
    return orjson.dumps(value).decode()


class _Printer:
    def __init__(self, others: Sequence[Any]) -> None:
        self.others = others
        self.lines: list[Line] = []

    def _same_everywhere(self, value: Any, path: Path) -> bool:
        return all(_at(o, path) == value for o in self.others)

    def _kind_everywhere(self, value: Any, path: Path) -> bool:
        return all(type(_at(o, path)) is type(value) for o in self.others)

    def emit(self, value: Any, path: Path, depth: int, label: str, comma: str, *,
             plain: bool = False) -> None:
        """Print `value` (found at `path`); `plain`: known to be the same everywhere."""
        same = plain or self._same_everywhere(value, path)
        if not isinstance(value, dict | list) or not value:
            text = "{}" if value == {} else "[]" if value == [] else _scalar(value)
            self.lines.append(Line(depth, f"{label}{text}{comma}", not same))
            return
        opening, closing = ("{", "}") if isinstance(value, dict) else ("[", "]")
        self.lines.append(Line(depth, f"{label}{opening}",
                               not same and not self._kind_everywhere(value, path)))
        items: list[tuple[str | int, Any, str]] = (
            [(k, value[k], f"{_scalar(k)}: ") for k in sorted(value)]
            if isinstance(value, dict) else [(i, v, "") for i, v in enumerate(value)])
        for n, (step, item, item_label) in enumerate(items):
            self.emit(item, (*path, step), depth + 1, item_label,
                      "," if n < len(items) - 1 else "", plain=same)
        self.lines.append(Line(depth, f"{closing}{comma}", False))


def diff_lines(values: Sequence[Any]) -> list[list[Line]]:
    """Each of `values` as pretty-printed lines, differing parts marked (module doc)."""
    out: list[list[Line]] = []
    for i, value in enumerate(values):
        printer = _Printer([v for j, v in enumerate(values) if j != i])
        printer.emit(value, (), 0, "", "")
        out.append(printer.lines)
    return out


__all__ = ["Line", "diff_lines"]
