"""Golden vectors of the sync API's HTTP bodies (`tests/vectors/http_bodies_v1.json`).

The JSON bodies are pinned as the text the hub's `web.json_response` and the
edge's `json=` write; the msgpack bodies byte for byte.  Each is rebuilt from
the fixed inputs in `tests.vectors.make_vectors` and read back with the
decoder the other side uses.
"""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

from cloud_hub.api.messages import MailOut
from sync_protocol.models import HubReceipt, PulledBatch, PullResponse, PushAck, push_ack_from_json
from sync_protocol.pull_wire import decode_pull_response, decode_pulled, pulled_log_id
from sync_protocol.push_wire import decode_push_answer, decode_push_many
from sync_protocol.receipt import verify_receipt
from tests.vectors.make_vectors import (
    LOG_ID,
    MAIL,
    SITE,
    http_models,
    http_msgpack,
    http_plain_json,
    json_text,
)

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
BODIES = json.loads((VECTORS / "http_bodies_v1.json").read_text())["bodies"]
SEALED_BATCH = bytes.fromhex(json.loads((VECTORS / "batch_v1_1.json").read_text())["sealed"])
SEALED_KEYS = bytes.fromhex(
    json.loads((VECTORS / "key_delivery_v1.json").read_text())["sealed"])
RECEIPT = json.loads((VECTORS / "receipt_v1.json").read_text())


def _receipt() -> HubReceipt:
    return HubReceipt(practice_id=UUID(RECEIPT["practice_id"]), site_id=UUID(RECEIPT["site_id"]),
                      batch_hash=bytes.fromhex(RECEIPT["batch_hash"]),
                      hub_seq=RECEIPT["hub_seq"], signature=bytes.fromhex(RECEIPT["signature"]))


def test_every_stored_body_has_a_builder_and_every_builder_a_stored_body() -> None:
    built = {*http_models(), *http_plain_json(SEALED_KEYS), *http_msgpack(SEALED_BATCH)}
    assert built == set(BODIES)


def test_model_bodies_encode_to_the_stored_text_and_decode_to_the_model() -> None:
    for name, (route, model) in http_models().items():
        stored = BODIES[name]
        assert (stored["route"], stored["model"]) == (route, type(model).__name__), name
        assert json_text(model.model_dump(mode="json")) == stored["body"], name
        assert type(model).model_validate_json(stored["body"]) == model, name


def test_plain_json_bodies_encode_to_the_stored_text() -> None:
    for name, (route, value) in http_plain_json(SEALED_KEYS).items():
        assert (BODIES[name]["route"], BODIES[name]["body"]) == (route, json_text(value)), name


def test_push_answers_decode_to_the_receipted_acks() -> None:
    ack = PushAck(hub_seq=RECEIPT["hub_seq"], receipt=_receipt())
    decoded = push_ack_from_json(json.loads(BODIES["push_answer"]["body"]))
    assert decoded == ack
    verify_receipt(decoded.receipt, bytes.fromhex(RECEIPT["hub_verify_key"]))
    answer = decode_push_answer(json.loads(BODIES["push_many_answer"]["body"]), sent=2)
    assert answer.acks == (ack,)
    assert answer.refused is not None
    assert (answer.refused["code"], answer.refused["status"], answer.refused["expected_seq"],
            answer.refused["expected_prev_hash"]) == ("chain_broken", 409, 10, "07" * 32)


def test_mailbox_bodies_decode_to_the_sealed_key_delivery() -> None:
    assert UUID(json.loads(BODIES["mail_post_answer"]["body"])["mail_id"]) == MAIL
    items = json.loads(BODIES["mail_list_answer"]["body"])["items"]
    assert [MailOut.model_validate(i) for i in items] == [MailOut(
        mail_id=MAIL, from_site=SITE, sealed=SEALED_KEYS, created_ms=1_732_406_400_000)]


def test_msgpack_bodies_encode_to_the_stored_bytes() -> None:
    for name, (route, raw) in http_msgpack(SEALED_BATCH).items():
        assert (BODIES[name]["route"], BODIES[name]["body_hex"]) == (route, raw.hex()), name


def test_msgpack_bodies_decode_to_the_stored_batches() -> None:
    pushed = bytes.fromhex(BODIES["push_request_many"]["body_hex"])
    assert decode_push_many(pushed, max_batch_bytes=1 << 20) == [SEALED_BATCH]
    batch = PulledBatch(hub_seq=RECEIPT["hub_seq"], site_id=SITE, sealed=SEALED_BATCH)
    pulled = bytes.fromhex(BODIES["pull_answer"]["body_hex"])
    assert decode_pull_response(pulled) == PullResponse(
        batches=(batch,), head=RECEIPT["hub_seq"] + 1, log_id=LOG_ID)
    frame = bytes.fromhex(BODIES["stream_frame"]["body_hex"])
    assert (decode_pulled(frame), pulled_log_id(frame)) == (batch, LOG_ID)
