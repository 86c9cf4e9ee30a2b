"""The staff pages' message catalogs: the same keys in every language; language choice."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

from edge_node.api.catalog import LANGUAGES, catalog, negotiate
from edge_node.fhir.conflict_reasons import RULE_NAMES, reason_key

LOCALE = Path(__file__).resolve().parents[3] / "edge_node" / "api" / "locale"
TEMPLATES = LOCALE.parent / "templates"


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_catalog_has_the_same_keys_and_fields() -> None:
    files = sorted(p.stem for p in LOCALE.glob("*.json"))
    assert files == sorted(LANGUAGES)
    loaded = {lang: json.loads((LOCALE / f"{lang}.json").read_text("utf-8"))
              for lang in LANGUAGES}
    reference = loaded["en"]
    for lang, messages in loaded.items():
        assert set(messages) == set(reference), (lang, set(messages) ^ set(reference))
        for key, text in messages.items():
            assert text.strip(), (lang, key)
            assert _fields(text) == _fields(reference[key]), (lang, key)


def test_every_rule_has_a_reason_and_every_template_key_exists() -> None:
    for lang in LANGUAGES:
        messages = catalog(lang).messages
        assert {reason_key(rule) for rule in RULE_NAMES} <= set(messages), lang
    used: set[str] = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r'\bt\("([a-z_.-]+)"\s*[,)]', template.read_text("utf-8")))
    assert used and used <= set(catalog("en").messages), used - set(catalog("en").messages)


def test_language_choice() -> None:
    assert negotiate(None, None).lang == "en"
    assert negotiate(None, "ja-JP,ja;q=0.9,en-US;q=0.8").lang == "ja"
    assert negotiate(None, "en;q=0.4, ja;q=0.8").lang == "ja"
    assert negotiate(None, "fr, ja;q=0").lang == "en"
    assert negotiate(None, "de, en;q=bad, ja;q=0.1").lang == "ja"
    assert negotiate("en", "ja").lang == "en"
    assert negotiate("xx", "ja").lang == "ja"
    assert catalog("en").text("queue.count", n=3) == "3 open conflicts"
