"""Message catalogs of the staff pages: one JSON file per language in `locale/`.

`catalog(lang)` is the catalog of one language; `negotiate(query_lang, accept)`
picks it: a `?lang=` the page's switch sets wins, then the first language of
`Accept-Language` (by q-value) that a catalog exists for, then English.  Every
catalog has the same keys (a test keeps it true); a key missing from one is a
bug, so `Catalog.text` raises `KeyError` rather than showing a key to staff.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Final

LANGUAGES: Final = ("ja", "en")
DEFAULT_LANGUAGE: Final = "en"


@dataclass(frozen=True, slots=True)
class Catalog:
    """The messages of one language."""

    lang: str
    messages: MappingProxyType[str, str]

    def text(self, key: str, **values: object) -> str:
        """The message `key`, with `{name}` fields filled from `values`."""
        message = self.messages[key]
        return message.format(**values) if values else message


@cache
def catalog(lang: str) -> Catalog:
    """The catalog of `lang` (one of `LANGUAGES`); raises `KeyError` for another."""
    if lang not in LANGUAGES:
        raise KeyError(lang)
    raw = resources.files("edge_node.api").joinpath("locale", f"{lang}.json").read_text(
        encoding="utf-8")
    return Catalog(lang, MappingProxyType(json.loads(raw)))


def _accepted(header: str) -> list[str]:
    """Languages of an Accept-Language header, most wanted first (primary tags only)."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and q > 0:
            ranked.append((-q, i, tag.split("-")[0].lower()))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate(query_lang: str | None, accept_language: str | None) -> Catalog:
    """The catalog for a request (module doc)."""
    if query_lang in LANGUAGES:
        return catalog(query_lang)
    for tag in _accepted(accept_language or ""):
        if tag in LANGUAGES:
            return catalog(tag)
    return catalog(DEFAULT_LANGUAGE)


__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "Catalog", "catalog", "negotiate"]
