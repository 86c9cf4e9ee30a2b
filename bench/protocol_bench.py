"""Seal and open throughput of 1,000-change batches on one core."""

from __future__ import annotations

import statistics
import time
import uuid

import nacl.utils

from bench.workload import changes_for_site
from sync_protocol.batch import open_batch, seal_batch
from sync_protocol.ids import uuid7
from sync_protocol.keys import Keyring, PracticeKey, SiteDirectory, SiteKeyPair

BATCH = 1000


def run_protocol_bench(batches: int = 20, repeats: int = 5) -> dict[str, float]:
    practice, site = uuid.uuid4(), uuid7(1, nacl.utils.random(10))
    keys = SiteKeyPair.generate(nacl.utils.random(64))
    ring = Keyring(practice, {1: PracticeKey(1, nacl.utils.random(32))})
    directory = SiteDirectory([keys.public(site)])
    change_sets = [changes_for_site(site, BATCH, seed=b, first_seq=1 + b * BATCH,
                                    resources=BATCH // 2) for b in range(batches)]
    plain_bytes = sum(len(v or b"") for c in change_sets[0] for v in c.elements.values())

    def seal_all() -> list[bytes]:
        return [seal_batch(practice_id=practice, site_id=site, site_keys=keys, key=ring.current,
                           changes=cs, prev_hash=bytes(32), batch_id=uuid.uuid4())
                for cs in change_sets]

    seal_rates, open_rates = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sealed = seal_all()
        t1 = time.perf_counter()
        for raw in sealed:
            open_batch(raw, ring, directory)
        t2 = time.perf_counter()
        seal_rates.append(batches * BATCH / (t1 - t0))
        open_rates.append(batches * BATCH / (t2 - t1))
    return {
        "change_json_bytes_avg": plain_bytes / BATCH,
        "sealed_bytes_per_change": len(sealed[0]) / BATCH,
        "seal_changes_per_s": statistics.median(seal_rates),
        "open_changes_per_s": statistics.median(open_rates),
    }
