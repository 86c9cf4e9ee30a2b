"""Pipelined pushes: a backlog goes a window of batches per request, the next
batches are sealed while a request is in flight, and everything arrives whole and in
order at another edge; hubs that cannot take a whole window get fewer per request.

The hub's faults are injected at its push path's fault points (`PushFaults`)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path
from typing import Any

import nacl.signing
import pytest
from aiohttp import web

from cloud_hub.api.context import PushFaults
from edge_node.sync.pusher import MAX_UNACKED, PUSH_WINDOW
from sync_protocol.errors import MalformedInput
from sync_protocol.push_wire import MEDIA_TYPE_MANY
from tests.edge_node.sync.edges import (
    FAST,
    Running,
    patient,
    practice,
    running,
    unsynced,
    wait_for,
)
from tests.edge_node.sync.hubs import add_operator, local_hub

SMALL_BATCHES = dataclasses.replace(FAST, max_batch_changes=2)


class FirstPushHeld:
    """The hub holds the first push request it gets until `release()`; the rest pass.

    Makes "sealing while a request is in flight" observable without timing: the
    pusher's first request cannot be answered before the test has looked.
    """

    def __init__(self) -> None:
        self.arrived = False
        self._released = asyncio.Event()

    async def before_push(self, request: web.Request) -> None:
        if not self.arrived:
            self.arrived = True
            await self._released.wait()

    def faults(self) -> PushFaults:
        return PushFaults(before_push=self.before_push)

    def release(self) -> None:
        self._released.set()


def previous_release(hold: FirstPushHeld) -> PushFaults:
    """A hub of the previous release: it reads any push body as one sealed batch, so
    several batches in one body are refused as malformed (400)."""

    async def before_push(request: web.Request) -> None:
        await hold.before_push(request)
        if request.content_type == MEDIA_TYPE_MANY:
            raise MalformedInput("the push body is not one sealed batch")

    return PushFaults(before_push=before_push)


async def _backlog(a_dir: Path, n: int) -> None:
    async with unsynced(a_dir) as a:  # written while the line was down
        for i in range(n):
            await a.write("Patient", f"p{i:02d}", patient(f"N{i}"))


def _unacked(a: Running) -> int:
    return int(a.query("SELECT count(*) FROM pushed_batches WHERE hub_seq IS NULL")[0][0])


def _ahead(a: Running) -> int:
    return a.sync.pusher.statistics().sealed_while_pushing


def _sealed(a: Running) -> int:
    return int(a.query("SELECT count(*) FROM pushed_batches")[0][0])


async def _arrived_in_order(a: Running, b: Running, changes: int, batches: int) -> None:
    await wait_for(lambda: len(b.states()) == changes, "the backlog at b", 20)
    await wait_for(lambda: _unacked(a) == 0, "every ack recorded at a")
    rows = a.query("SELECT seq_from, seq_to, hub_seq FROM pushed_batches ORDER BY seq_from")
    assert len(rows) == batches and all(h is not None for _, _, h in rows)
    # Chain order is hub order, the hub stored every batch once, the chain has no gap.
    assert [h for _, _, h in rows] == sorted({h for _, _, h in rows})
    assert [f for f, _, _ in rows] == [1] + [t + 1 for _, t, _ in rows[:-1]]
    assert a.query("SELECT count(*) FROM dead_letters") == [(0,)]
    assert a.states() == b.states()
    assert b.query("SELECT next_seq FROM origin_chains WHERE origin = ?",
                   str(a.edge.site.site_id)) == [(changes + 1,)]


async def test_batches_are_sealed_while_a_push_is_in_flight_and_sent_a_window_at_a_time(
        tmp_path: Path) -> None:
    hold = FirstPushHeld()
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db", push_faults=hold.faults()) as hub:
        a_dir, b_dir = await practice(tmp_path, hub.url, operator, 2)
        await _backlog(a_dir, 40)  # 20 batches of 2 changes
        async with running(a_dir, SMALL_BATCHES) as a, running(b_dir) as b:
            # The first batch is in flight (held by the hub); the pusher seals a window
            # ahead of it, and no further: at most MAX_UNACKED are ever unacknowledged.
            await wait_for(lambda: hold.arrived and _ahead(a) == PUSH_WINDOW,
                           "a window sealed while the first push is in flight")
            stats = a.sync.pusher.statistics()
            assert (stats.requests, stats.acked) == (1, 0)
            assert _sealed(a) == 1 + PUSH_WINDOW <= MAX_UNACKED
            hold.release()
            await _arrived_in_order(a, b, 40, 20)
            await wait_for(lambda: a.sync.pusher.statistics().acked == 20, "20 acks counted")
            stats = a.sync.pusher.statistics()
            # The first request, then the window sealed meanwhile in one, then the 11
            # others in at most 11 (in practice 2 or 3: the next window is sealed while
            # each request is in flight).
            assert stats.requests <= 2 + (20 - 1 - PUSH_WINDOW) < 20
            assert stats.sealed_while_pushing >= PUSH_WINDOW


async def test_live_writes_during_a_push_go_in_the_next_request(tmp_path: Path) -> None:
    hold = FirstPushHeld()
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db", push_faults=hold.faults()) as hub:
        a_dir, b_dir = await practice(tmp_path, hub.url, operator, 2)
        async with running(a_dir, SMALL_BATCHES) as a, running(b_dir) as b:
            await wait_for(lambda: a.sync.ctx.keyring is not None, "keys at a")
            await a.write("Patient", "first", patient("Sato"))
            await wait_for(lambda: hold.arrived, "the first push at the hub")
            for i in range(6):  # the pusher seals each as it is committed
                await a.write("Patient", f"p{i}", patient(f"N{i}"))
                # (waited for, or two writes could share a batch of up to 2 changes)
                await wait_for(lambda: _ahead(a) == i + 1,  # noqa: B023 - awaited here
                               f"write {i + 1} sealed while the first push is in flight")
            assert _sealed(a) == 7
            hold.release()
            await _arrived_in_order(a, b, 7, 7)
            assert a.sync.pusher.statistics().requests == 2


async def test_a_hub_of_the_previous_release_gets_the_batches_one_by_one(
        tmp_path: Path) -> None:
    # The previous release reads any push body as one sealed batch (400 for an array).
    hold = FirstPushHeld()
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db", push_faults=previous_release(hold)) as hub:
        a_dir, b_dir = await practice(tmp_path, hub.url, operator, 2)
        await _backlog(a_dir, 20)
        async with running(a_dir, SMALL_BATCHES) as a, running(b_dir) as b:
            await wait_for(lambda: hold.arrived and _ahead(a) == PUSH_WINDOW,
                           "a window sealed while the first push is in flight")
            hold.release()
            await _arrived_in_order(a, b, 20, 10)
            # The first batch alone, the refused window, then one request per batch.
            assert a.sync.pusher.statistics().requests == 1 + 1 + 9


async def test_a_hub_with_a_lower_body_limit_gets_fewer_bytes_per_request(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    hold = FirstPushHeld()
    operator = await add_operator(tmp_path / "hub.db")
    # One sealed batch of 2 patients is ~1.2 KiB (padded to a bucket); a window is ~10 KiB.
    async with local_hub(tmp_path / "hub.db", config={"max_batch_bytes": 3000},
                         push_faults=hold.faults()) as hub:
        a_dir, b_dir = await practice(tmp_path, hub.url, operator, 2)
        await _backlog(a_dir, 20)
        caplog.set_level(logging.INFO, logger="edge_node.sync.pusher")
        async with running(a_dir, SMALL_BATCHES) as a, running(b_dir) as b:
            await wait_for(lambda: hold.arrived and _ahead(a) == PUSH_WINDOW,
                           "a window sealed while the first push is in flight")
            sizes: list[Any] = a.query("SELECT length(sealed) FROM pushed_batches")
            assert 2 * max(n for (n,) in sizes) <= 3000 < sum(n for (n,) in sizes[1:])
            hold.release()
            await _arrived_in_order(a, b, 20, 10)
        said = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert said and all("fewer bytes per request" in m for m in said), said


async def test_a_wrong_receipt_in_a_window_keeps_the_acks_before_it_and_dead_letters_it(
        tmp_path: Path) -> None:
    """Receipts are verified one by one with the pinned hub key, in chain order."""
    hold = FirstPushHeld()  # so that hub seq 3 is answered inside a window
    impostor = nacl.signing.SigningKey.generate()

    def receipt_key(hub_seq: int, key: nacl.signing.SigningKey) -> nacl.signing.SigningKey:
        return impostor if hub_seq == 3 else key

    operator = await add_operator(tmp_path / "hub.db")
    faults = PushFaults(before_push=hold.before_push, receipt_key=receipt_key)
    async with local_hub(tmp_path / "hub.db", push_faults=faults) as hub:
        a_dir, _ = await practice(tmp_path, hub.url, operator, 2)
        await _backlog(a_dir, 20)
        async with running(a_dir, SMALL_BATCHES) as a:
            await wait_for(lambda: hold.arrived and _ahead(a) == PUSH_WINDOW,
                           "a window sealed while the first push is in flight")
            hold.release()
            await wait_for(lambda: a.query("SELECT count(*) FROM dead_letters") == [(1,)],
                           "the batch with the wrong receipt dead-lettered")
            assert a.query("SELECT seq_from, code FROM dead_letters") == [(5, "bad_signature")]
            assert a.query("SELECT seq_from, hub_seq FROM pushed_batches WHERE hub_seq IS NOT "
                           "NULL ORDER BY seq_from") == [(1, 1), (3, 2)]
            await wait_for(lambda: a.sync.pusher.statistics().acked == 2, "2 acks counted")
            assert a.sync.pusher.statistics().requests == 2  # and nothing after the dead letter
