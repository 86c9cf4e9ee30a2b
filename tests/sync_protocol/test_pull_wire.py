"""The pull answer, stream frames and the push answer's JSON: round trips, fixed bytes, fuzz."""

from __future__ import annotations

import contextlib
import json
from uuid import UUID

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_protocol.errors import MalformedInput, ProtocolError
from sync_protocol.models import HubReceipt, PulledBatch, PushAck, push_ack_from_json
from sync_protocol.pull_wire import (
    decode_pull_response,
    decode_pulled,
    encode_pull_response,
    encode_pulled,
    pulled_log_id,
)

LOG = UUID(int=0x0123456789ABCDEF0123456789ABCDEF)
SITE = UUID(int=0x11112222333344445555666677778888)
OTHER = UUID(int=0xAA)
FIRST = PulledBatch(hub_seq=1, site_id=SITE, sealed=b"CSB1sealed")
SECOND = PulledBatch(hub_seq=300, site_id=OTHER, sealed=b"\x00\xff")
ACK = PushAck(hub_seq=7, duplicate=True, receipt=HubReceipt(
    practice_id=LOG, site_id=SITE, batch_hash=bytes(range(32)), hub_seq=7,
    signature=bytes(range(64))))

# What `cloud_hub/pull_wire.py` and `cloud_hub/api/messages.py` produced for these inputs
# before the forms moved here: same bytes, so no protocol version bump.
_LOG_BYTES = b"\x01#Eg\x89\xab\xcd\xef\x01#Eg\x89\xab\xcd\xef"
_FIRST_BYTES = (b'\x83\xa7hub_seq\x01\xa7site_id\xc4\x10\x11\x11""33DDUUffww\x88\x88'
                b"\xa6sealed\xc4\nCSB1sealed")
OLD_FRAME = b"\x84" + _FIRST_BYTES[1:] + b"\xa6log_id\xc4\x10" + _LOG_BYTES
OLD_RESPONSE = (b"\x83\xa7batches\x92" + _FIRST_BYTES
                + b"\x83\xa7hub_seq\xcd\x01,\xa7site_id\xc4\x10" + bytes(15) + b"\xaa"
                + b"\xa6sealed\xc4\x02\x00\xff"
                + b"\xa4head\xcd\x01,\xa6log_id\xc4\x10" + _LOG_BYTES)
OLD_EMPTY = b"\x83\xa7batches\x90\xa4head\x00\xa6log_id\xc4\x10" + _LOG_BYTES
OLD_ACK_JSON = (
    '{"hub_seq": 7, "duplicate": true, "receipt": {"practice_id": '
    '"01234567-89ab-cdef-0123-456789abcdef", "site_id": "11112222-3333-4444-5555-666677778888", '
    '"batch_hash": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", '
    '"hub_seq": 7, "signature": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'
    '202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"}}')


def test_bytes_are_those_of_the_old_hub_code() -> None:
    assert encode_pulled(hub_seq=1, site_id=SITE, sealed=b"CSB1sealed", log_id=LOG) == OLD_FRAME
    assert encode_pull_response([FIRST, SECOND], head=300, log_id=LOG) == OLD_RESPONSE
    assert encode_pull_response([], head=0, log_id=LOG) == OLD_EMPTY
    assert json.dumps(ACK.to_json()) == OLD_ACK_JSON


def test_round_trips() -> None:
    frame = encode_pulled(hub_seq=1, site_id=SITE, sealed=b"CSB1sealed", log_id=LOG)
    assert decode_pulled(frame) == FIRST
    assert pulled_log_id(frame) == LOG
    answer = decode_pull_response(OLD_RESPONSE)
    assert answer.batches == (FIRST, SECOND) and answer.head == 300 and answer.log_id == LOG
    assert pulled_log_id(OLD_RESPONSE) == LOG
    assert push_ack_from_json(json.loads(json.dumps(ACK.to_json()))) == ACK


def test_log_id_is_optional_and_extra_keys_are_ignored() -> None:
    raw = msgpack.packb({"batches": [], "head": 3, "later": 1}, use_bin_type=True)
    assert decode_pull_response(raw).log_id is None and pulled_log_id(raw) is None
    ack = ACK.to_json()
    del ack["duplicate"]
    assert push_ack_from_json(ack) == ACK.model_copy(update={"duplicate": False})


@pytest.mark.parametrize("bad", [
    {"batches": [{"hub_seq": 1, "site_id": SITE.bytes, "sealed": 5}], "head": 1},  # not bytes(5)
    {"batches": [{"hub_seq": 1, "site_id": b"short", "sealed": b""}], "head": 1},
    {"batches": [{"hub_seq": 0, "site_id": SITE.bytes, "sealed": b""}], "head": 1},
    {"batches": {}, "head": 1},
    {"batches": [], "head": -1},
    {"batches": [], "head": 1, "log_id": b"x"},
    {"head": 1},
    [1, 2],
])
def test_malformed_answers_are_refused(bad: object) -> None:
    with pytest.raises(MalformedInput):
        decode_pull_response(msgpack.packb(bad, use_bin_type=True))


@pytest.mark.parametrize("bad", [
    None, [], "x", {}, {"hub_seq": 1, "duplicate": False, "receipt": []},
    {**ACK.to_json(), "receipt": {**ACK.to_json()["receipt"], "batch_hash": "zz"}},
    {**ACK.to_json(), "receipt": {**ACK.to_json()["receipt"], "signature": 5}},
    {**ACK.to_json(), "receipt": {**ACK.to_json()["receipt"], "site_id": "nope"}},
    {**ACK.to_json(), "hub_seq": 0},
])
def test_malformed_push_answers_are_refused(bad: object) -> None:
    with pytest.raises(MalformedInput):
        push_ack_from_json(bad)


def _fields() -> st.SearchStrategy[object]:
    leaf = st.one_of(st.none(), st.booleans(), st.integers(-(1 << 63), (1 << 64) - 1),
                     st.binary(max_size=20), st.text(max_size=10), st.floats())
    return st.recursive(leaf, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.sampled_from(
                            ["batches", "head", "log_id", "hub_seq", "site_id", "sealed"]),
                            inner, max_size=6), max_leaves=20)


def _only_protocol_errors(fn: object, data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        fn(data)  # type: ignore[operator]


@given(data=st.binary(max_size=300))
def test_random_bytes_raise_only_protocol_errors(data: bytes) -> None:
    for fn in (decode_pulled, decode_pull_response, pulled_log_id):
        _only_protocol_errors(fn, data)


@given(value=_fields())
def test_random_maps_raise_only_protocol_errors(value: object) -> None:
    data = msgpack.packb(value, use_bin_type=True)
    for fn in (decode_pulled, decode_pull_response, pulled_log_id):
        _only_protocol_errors(fn, data)


@given(data=st.binary(max_size=len(OLD_RESPONSE)), cut=st.integers(0, len(OLD_RESPONSE)))
def test_mangled_answers_raise_only_protocol_errors(data: bytes, cut: int) -> None:
    mangled = OLD_RESPONSE[:cut] + data[cut:]
    for fn in (decode_pulled, decode_pull_response, pulled_log_id):
        _only_protocol_errors(fn, mangled)


@given(value=st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(1 << 63), (1 << 64) - 1),
              st.text(max_size=70), st.floats()),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["hub_seq", "duplicate", "receipt", "practice_id", "site_id", "batch_hash",
         "signature"]), inner, max_size=7), max_leaves=20))
def test_random_push_answers_raise_only_protocol_errors(value: object) -> None:
    with contextlib.suppress(ProtocolError):
        push_ack_from_json(value)
