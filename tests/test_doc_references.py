"""Code cites only what is in this repository, and says why instead of citing issue numbers.

Comments, docstrings and help texts of the packages below may point at
`docs/*.md`, `sync_protocol/PROTOCOL.md` or the READMEs; design notes kept
outside the repository and tracker numbers mean nothing to a reader of the code.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Where the rule holds.  `edge_node` joins once its restructuring lands.
CHECKED_DIRS: tuple[str, ...] = ("sync_protocol", "conflict", "cloud_hub", "chartsync",
                                 "bench", "deploy")
#: An issue number: `#5`, `(#41)`, `issue 12` (not CSS colours like `#444`).
ISSUE_NUMBER = re.compile(r"(?<![\w&:])#\d{1,5}\b(?![0-9a-fA-F;])|\bissues? #?\d+\b", re.I)
OUTSIDE_DOCS = re.compile(r"\b(ARCHITECTURE|DOMAIN|PERFORMANCE|STYLE)\.md\b|\.\./shared/")
DOCS_CITED = re.compile(r"\bdocs/[\w./-]+\.md\b")


def _texts() -> list[tuple[Path, str]]:
    return [(path, path.read_text(encoding="utf-8"))
            for d in CHECKED_DIRS for path in sorted((ROOT / d).rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts
            and path.suffix not in {".pyc", ".png", ".ico"}]


def test_no_issue_numbers_or_outside_documents_are_cited() -> None:
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for path, text in _texts() for n, line in enumerate(text.splitlines(), 1)
             if ISSUE_NUMBER.search(line) or OUTSIDE_DOCS.search(line)]
    assert not found, "say what the code does instead:\n" + "\n".join(found)


def test_every_cited_document_exists() -> None:
    missing = {f"{path.relative_to(ROOT)}: {cited}" for path, text in _texts()
               for cited in DOCS_CITED.findall(text) if not (ROOT / cited).is_file()}
    assert not missing, sorted(missing)


def test_the_patterns_catch_what_they_are_for() -> None:
    for line in ("# re-ack (#41)", "a rebuilt hub, #5).", "see issue 12", "color:#444;"):
        assert bool(ISSUE_NUMBER.search(line)) == ("444" not in line), line
    assert OUTSIDE_DOCS.search("(see ../shared/PERFORMANCE.md)")
