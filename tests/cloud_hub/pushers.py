"""Sites that push continuously over real HTTP, retrying like an edge does, and the audit."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from uuid import UUID

import aiohttp
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from cloud_hub.store.base import HubStore
from sync_protocol.ids import PracticeId
from tests.cloud_hub.clinic import Clinic
from tests.cloud_hub.harness import Member


class Retryable(Exception):
    """The hub said 5xx (e.g. store unavailable) or was unreachable: push the same bytes again."""


@dataclass
class PushRun:
    """Batches per site, and the hub sequence each one was acknowledged at."""

    batches: dict[UUID, list[bytes]]
    acks: dict[tuple[UUID, int], int] = field(default_factory=dict)
    retries: int = 0
    progress: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def total(self) -> int:
        return sum(len(b) for b in self.batches.values())

    async def wait_acks(self, n: int) -> None:
        async with self.progress:
            await self.progress.wait_for(lambda: len(self.acks) >= n)


def sealed_run(clinic: Clinic, members: list[Member], per_site: int, changes: int) -> PushRun:
    return PushRun({m.site.site_id: [clinic.seal(m.site, changes) for _ in range(per_site)]
                    for m in members})


async def push_site(session: aiohttp.ClientSession, base_url: str, member: Member,
                    run: PushRun, deadline_s: float) -> None:
    """Push the site's batches in order; each is retried until acknowledged (idempotent)."""
    site_id = member.site.site_id
    for index, raw in enumerate(run.batches[site_id]):
        async for attempt in AsyncRetrying(
                stop=stop_after_delay(deadline_s), wait=wait_exponential(0.01, max=0.2),
                retry=retry_if_exception_type((Retryable, aiohttp.ClientError, OSError,
                                               TimeoutError)), reraise=True):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    run.retries += 1
                async with session.post(f"{base_url}/v1/batches", data=raw,
                                        headers=member.headers,
                                        timeout=aiohttp.ClientTimeout(total=10)) as resp:
                    if resp.status >= 500:
                        raise Retryable(resp.status)
                    body = await resp.json(content_type=None)
                    assert resp.status == 200, body
        async with run.progress:
            run.acks[(site_id, index)] = int(body["hub_seq"])
            run.progress.notify_all()


async def audit(store: HubStore, practice_id: UUID, run: PushRun) -> None:
    """Every batch stored exactly once, hub sequences without gaps, each site in chain order,
    and every acknowledgement true to where the batch is."""
    stored = await store.batches_after(PracticeId(practice_id), 0, 100_000)
    assert [b.hub_seq for b in stored] == list(range(1, run.total + 1))
    for site_id, batches in run.batches.items():
        assert [b.sealed for b in stored if b.site_id == site_id] == batches
    for (site_id, index), hub_seq in run.acks.items():
        assert stored[hub_seq - 1].sealed == run.batches[site_id][index]
    assert len(run.acks) == run.total
