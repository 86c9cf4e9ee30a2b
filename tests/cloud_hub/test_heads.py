"""Record heads from headers: a batch at once equals its changes one by one; `only` agrees."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_hub.heads import advance_heads, pack_dot, unpack_heads
from sync_protocol.models import ChangeMeta, Dot

SITES = [uuid.UUID(int=i + 1) for i in range(3)]
TOKENS = [bytes([i]) * 16 for i in range(4)]

dots = st.builds(Dot, st.sampled_from(SITES), st.integers(1, 6))
metas = st.lists(st.builds(ChangeMeta, st.sampled_from(TOKENS),
                           st.lists(dots, max_size=3).map(tuple)), min_size=1, max_size=8)
stored = st.dictionaries(st.sampled_from(TOKENS),
                         st.lists(dots, min_size=1, max_size=3).map(
                             lambda ds: b"".join(sorted({pack_dot(d.site, d.seq) for d in ds}))),
                         max_size=4)


@settings(max_examples=300, deadline=None)
@given(current=stored, batch=metas, site=st.sampled_from(SITES), seq_from=st.integers(1, 50))
def test_batch_equals_one_change_at_a_time(current: dict[bytes, bytes], batch: list[ChangeMeta],
                                           site: uuid.UUID, seq_from: int) -> None:
    whole = advance_heads(current, site, seq_from, batch)
    state = dict(current)
    concurrent = 0
    for i, meta in enumerate(batch):
        step = advance_heads(state, site, seq_from + i, [meta])
        state.update(step.heads)
        concurrent += step.concurrent_edits
    assert {t: unpack_heads(h) for t, h in whole.heads.items()} == {
        t: unpack_heads(state[t]) for t in whole.heads}
    assert whole.concurrent_edits == concurrent
    for i, meta in enumerate(batch):  # a change's own dot is a head until replaced
        later = batch[i + 1:]
        if not any(m.token == meta.token for m in later):
            assert pack_dot(site, seq_from + i) in unpack_heads(whole.heads[meta.token])
    only = set(current)
    partial = advance_heads(current, site, seq_from, batch, only=only)
    assert set(partial.heads) <= only
    assert all(partial.heads[t] == whole.heads[t] for t in partial.heads)


def test_a_write_that_saw_every_head_is_not_concurrent() -> None:
    a, b = SITES[:2]
    token = TOKENS[0]
    current = {token: pack_dot(a, 1) + pack_dot(b, 1)}
    seen_all = advance_heads(current, a, 2, [ChangeMeta(token, (Dot(a, 1), Dot(b, 1)))])
    assert seen_all.concurrent_edits == 0
    assert unpack_heads(seen_all.heads[token]) == {pack_dot(a, 2)}
    missed_b = advance_heads(current, a, 2, [ChangeMeta(token, (Dot(a, 1),))])
    assert missed_b.concurrent_edits == 1
    assert unpack_heads(missed_b.heads[token]) == {pack_dot(b, 1), pack_dot(a, 2)}


def test_new_and_known_records_split_like_the_postgres_store_does() -> None:
    """Concurrency = (new records, from the as-if-new pass) + (known records, second pass)."""
    a, b = SITES[:2]
    known, new = TOKENS[0], TOKENS[1]
    batch = [ChangeMeta(new, ()), ChangeMeta(known, ()), ChangeMeta(new, ())]
    current = {known: pack_dot(b, 1)}
    whole = advance_heads(current, a, 1, batch)
    as_new = advance_heads({}, a, 1, batch)
    split = sum(n for t, n in as_new.concurrent_by_token.items() if t not in current) + \
        advance_heads(current, a, 1, batch, only=set(current)).concurrent_edits
    assert whole.concurrent_edits == split == 2
