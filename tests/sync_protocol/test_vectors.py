"""Golden vectors: today's code still opens v1 bytes, and seals them the same way."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

from sync_protocol.batch import open_batch, read_sealed, seal_batch
from sync_protocol.keys import Keyring, PracticeKey, SiteDirectory, SiteKeyPair
from sync_protocol.wire import encode_changes
from tests.vectors.make_vectors import change_json, vector_changes

VECTOR = json.loads((Path(__file__).parent.parent / "vectors" / "batch_v1.json").read_text())


def _keys() -> tuple[Keyring, SiteDirectory, SiteKeyPair]:
    site_keys = SiteKeyPair.generate(bytes.fromhex(VECTOR["site_seed"]))
    keyring = Keyring(UUID(VECTOR["practice_id"]),
                      {1: PracticeKey(1, bytes.fromhex(VECTOR["key_secret"]))})
    return keyring, SiteDirectory([site_keys.public(UUID(VECTOR["site_id"]))]), site_keys


def test_v1_vector_still_opens_to_the_recorded_changes() -> None:
    keyring, directory, _ = _keys()
    header, changes = open_batch(bytes.fromhex(VECTOR["sealed"]), keyring, directory)
    assert [change_json(c) for c in changes] == VECTOR["changes"]
    assert (header.seq_from, header.seq_to, header.key_epoch) == (7, 9, 1)
    assert list(header.protocol) == VECTOR["protocol"]


def test_sealing_the_vector_inputs_gives_the_same_header_and_content() -> None:
    keyring, _, site_keys = _keys()
    sealed = seal_batch(
        practice_id=UUID(VECTOR["practice_id"]), site_id=UUID(VECTOR["site_id"]),
        site_keys=site_keys, key=keyring.current, changes=vector_changes(),
        prev_hash=bytes.fromhex(VECTOR["prev_hash"]), batch_id=UUID(VECTOR["batch_id"]),
        nonce=bytes.fromhex(VECTOR["nonce"]))
    recorded = read_sealed(bytes.fromhex(VECTOR["sealed"]))
    assert read_sealed(sealed).parts.header == recorded.parts.header
    # The ciphertext also matches unless the zstd library's output changed.
    assert encode_changes(vector_changes())["sites"] == sorted(
        {UUID(s).bytes for c in VECTOR["changes"] for v in c["replaces"].values() for s, _ in v})
