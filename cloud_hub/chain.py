"""Where a site's chain continues, and the refusal that tells it so."""

from __future__ import annotations

from cloud_hub.errors import ChainMismatch
from cloud_hub.store.base import IncomingBatch


def check_continues(batch: IncomingBatch, *, next_seq: int, last_hash: bytes) -> None:
    """Raise `ChainMismatch` (naming `next_seq` and `last_hash`) unless `batch` follows them.

    The same rule as `sync_protocol.batch.check_follows`, on the store's view of a batch.
    """
    if batch.seq_from == next_seq and batch.prev_hash == last_hash:
        return
    what = "a gap or a replay" if batch.seq_from != next_seq else "a fork"
    raise ChainMismatch(
        f"batch {batch.batch_id} of site {batch.site_id} starts at seq {batch.seq_from} "
        f"after hash {batch.prev_hash.hex()[:16]}…, expected seq {next_seq} after "
        f"{last_hash.hex()[:16]}… ({what})",
        hint="resend from expected_seq with expected_prev_hash (both in this answer)",
        expected_seq=next_seq, expected_prev_hash=last_hash)
