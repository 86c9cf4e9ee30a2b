"""A backlog is pushed a window of batches per request, and arrives whole and in order."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import cloud_hub.api.batches
from edge_node.sync.pusher import PUSH_WINDOW
from tests.edge_node.sync.edges import FAST, patient, practice, running, unsynced, wait_for
from tests.edge_node.sync.hubs import add_operator, local_hub

SMALL_BATCHES = dataclasses.replace(FAST, max_batch_changes=2)


async def test_a_backlog_takes_one_request_per_window_of_batches(tmp_path: Path) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub:
        a_dir, b_dir = await practice(tmp_path, hub.url, operator, 2)
        async with unsynced(a_dir) as a:  # written while the line was down
            for i in range(40):
                await a.write("Patient", f"p{i:02d}", patient(f"N{i}"))
        async with running(a_dir, SMALL_BATCHES) as a, running(b_dir) as b:
            await wait_for(lambda: len(b.states()) == 40, "the backlog at b", 20)
            await wait_for(lambda: a.query("SELECT count(*) FROM pushed_batches WHERE hub_seq "
                                           "IS NULL") == [(0,)], "every ack recorded at a")
            batches = a.query("SELECT seq_from, seq_to, hub_seq FROM pushed_batches "
                              "ORDER BY seq_from")
            assert len(batches) == 20 and all(h is not None for _, _, h in batches)
            # Chain order is hub order, and the hub stored every batch once.
            assert [h for _, _, h in batches] == sorted(h for _, _, h in batches)
            assert a.sync.pusher.requests <= 20 // PUSH_WINDOW + 2 < len(batches)
            assert a.states() == b.states()
            assert b.query("SELECT next_seq FROM origin_chains WHERE origin = ?",
                           str(a.edge.site.site_id)) == [(41,)]


async def test_a_hub_of_the_previous_release_gets_the_batches_one_by_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The previous release reads any push body as one sealed batch (400 for an array).
    monkeypatch.setattr(cloud_hub.api.batches, "MEDIA_TYPE_MANY", "application/x-unknown")
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub:
        a_dir, b_dir = await practice(tmp_path, hub.url, operator, 2)
        async with unsynced(a_dir) as a:
            for i in range(10):
                await a.write("Patient", f"p{i}", patient(f"N{i}"))
        async with running(a_dir, SMALL_BATCHES) as a, running(b_dir) as b:
            await wait_for(lambda: len(b.states()) == 10 and a.query(
                "SELECT count(*) FROM pushed_batches WHERE hub_seq IS NULL") == [(0,)],
                "the backlog at b, pushed one by one", 20)
            assert a.query("SELECT count(*) FROM dead_letters") == [(0,)]
            assert a.sync.pusher.requests == 5 + 1  # the refused try, then one per batch
            assert a.states() == b.states()
