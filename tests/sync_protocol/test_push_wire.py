"""Several batches in one push (`push_wire`): the body's bytes, its limits, and the
answer the pusher resumes from (#5)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_protocol.canonical import pack_plain
from sync_protocol.errors import MalformedInput, TooLarge
from sync_protocol.models import HubReceipt, PushAck
from sync_protocol.push_wire import (
    MAX_PUSH_BATCHES,
    decode_push_answer,
    decode_push_many,
    encode_push_many,
)

LIMIT = 1 << 16


def test_the_body_is_a_msgpack_array_of_bin_in_order() -> None:
    # Golden bytes: fixarray of 2, bin8 of 1 byte, bin8 of 2 bytes.
    assert encode_push_many([b"\x01", b"\x02\x03"]) == bytes.fromhex("92c40101c4020203")


@given(st.lists(st.binary(max_size=64), min_size=1, max_size=MAX_PUSH_BATCHES))
def test_what_is_encoded_decodes_to_the_same_batches_in_the_same_order(
        batches: list[bytes]) -> None:
    assert decode_push_many(encode_push_many(batches), max_batch_bytes=LIMIT) == batches


@pytest.mark.parametrize("count", [0, MAX_PUSH_BATCHES + 1])
def test_an_encoder_refuses_a_count_the_hub_would_refuse(count: int) -> None:
    with pytest.raises(ValueError, match="1 to 16"):
        encode_push_many([b"x"] * count)


@pytest.mark.parametrize(("raw", "error"), [
    (b"", MalformedInput), (b"\xc1", MalformedInput), (pack_plain([]), MalformedInput),
    (pack_plain({"batches": [b"x"]}), MalformedInput), (pack_plain([b"x", "text"]),
                                                        MalformedInput),
    (pack_plain([b"x"]) + b"\x00", MalformedInput),
    (pack_plain([b"x"] * (MAX_PUSH_BATCHES + 1)), TooLarge),
    (pack_plain([bytes(LIMIT + 1)]), MalformedInput),  # over msgpack's cap: not even read
])
def test_bad_bodies_raise_protocol_errors_only(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        decode_push_many(raw, max_batch_bytes=LIMIT)
    assert type(caught.value) is error


def _ack(hub_seq: int) -> dict[str, Any]:
    receipt = HubReceipt(practice_id=UUID(int=1), site_id=UUID(int=2),
                         batch_hash=bytes(32), hub_seq=hub_seq, signature=bytes(64))
    return PushAck(hub_seq=hub_seq, receipt=receipt).to_json()


REFUSAL = {"code": "chain_broken", "status": 409, "expected_seq": 5}


def test_an_answer_gives_the_acks_in_order_and_the_refusal_of_the_next() -> None:
    answer = decode_push_answer({"acks": [_ack(3), _ack(4)], "refused": REFUSAL}, sent=3)
    assert [a.hub_seq for a in answer.acks] == [3, 4] and answer.refused == REFUSAL
    whole = decode_push_answer({"acks": [_ack(3)], "refused": None}, sent=1)
    assert len(whole.acks) == 1 and whole.refused is None


@pytest.mark.parametrize(("raw", "sent"), [
    ([], 1), ({"acks": {}}, 1), ({"acks": [_ack(1)], "refused": "no"}, 2),
    ({"acks": [_ack(1), _ack(2)], "refused": None}, 1),   # acks for batches not sent
    ({"acks": [_ack(1)], "refused": REFUSAL}, 1),         # refusal of a batch not sent
    ({"acks": [_ack(1)], "refused": None}, 2),            # a batch neither acked nor refused
    ({"acks": [{"hub_seq": 1}], "refused": None}, 1),
])
def test_an_answer_the_pusher_could_not_resume_from_is_malformed(raw: Any, sent: int) -> None:
    with pytest.raises(MalformedInput):
        decode_push_answer(raw, sent=sent)
