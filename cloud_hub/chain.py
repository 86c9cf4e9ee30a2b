"""Where a site's chain continues, and the refusal that tells it so."""

from __future__ import annotations

from sync_protocol.batch import check_follows
from sync_protocol.errors import ChainBroken
from sync_protocol.models import BatchHeader

from cloud_hub.errors import ChainMismatch
from cloud_hub.store.base import IncomingBatch


def check_continues(batch: IncomingBatch, *, next_seq: int, last_hash: bytes) -> None:
    """Raise `ChainMismatch` (naming `next_seq` and `last_hash`) unless `batch` follows them."""
    if batch.seq_from == next_seq and batch.prev_hash == last_hash:
        return
    probe = BatchHeader.model_construct(batch_id=batch.batch_id, site_id=batch.site_id,
                                        seq_from=batch.seq_from, prev_hash=batch.prev_hash)
    try:
        check_follows(probe, next_seq=next_seq, prev_hash=last_hash)
    except ChainBroken as exc:
        raise ChainMismatch(exc.message, hint=exc.hint, expected_seq=next_seq,
                            expected_prev_hash=last_hash) from None
    raise AssertionError("check_follows accepted a batch that does not follow")
