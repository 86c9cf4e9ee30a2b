"""Heartbeats, the operator dashboard, operator approval (disaster recovery) and metrics (#5)."""

from __future__ import annotations

from typing import Any

from cloud_hub.dashboard import Thresholds, agreement
from cloud_hub.store.base import SiteStatus
from sync_protocol.ids import PracticeId, SiteId
from tests.cloud_hub.harness import Harness, Member
from tests.cloud_hub.test_retention import with_config

DIGEST_A = "a" * 64
DIGEST_B = "b" * 64


def report(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"cursor": 0, "outbox_depth": 0, "oldest_unpushed_age_s": None,
                            "software_version": "0.5.0", "protocol_version": "1.0",
                            "state_digest": DIGEST_A, "held_batches": 0, "dead_letters": 0,
                            "gaps": [], "upgrade_needed": None, "last_error": None,
                            "clock_offset_ms": 12}
    body.update(changes)
    return body


async def beat(harness: Harness, member: Member, **changes: Any) -> int:
    resp = await harness.client.post("/v1/heartbeat", json=report(**changes),
                                     headers=member.headers)
    status: int = resp.status
    return status


async def dashboard(harness: Harness) -> dict[str, Any]:
    resp = await harness.client.get("/v1/dashboard", headers=harness.op_headers)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


def sites_of(view: dict[str, Any], pid: object) -> dict[str, dict[str, Any]]:
    practice = next(p for p in view["practices"] if p["practice_id"] == str(pid))
    return {s["site_id"]: s for s in practice["sites"]}


async def test_heartbeat_is_validated_and_bounded(harness: Harness) -> None:
    _clinic, (a, _b) = await harness.practice_with_sites()
    assert await beat(harness, a) == 204
    for bad in ({"state_digest": "XYZ"}, {"protocol_version": "one"}, {"cursor": -1},
                {"gaps": [{"origin": str(a.site.site_id), "missing_from": 1,
                           "missing_to": 2}] * 101},
                {"last_error": "x" * 501}, {"colour": "blue"}, {"software_version": ""}):
        resp = await harness.client.post("/v1/heartbeat", json=report(**bad),
                                         headers=a.headers)
        assert resp.status == 400, bad
        assert (await resp.json())["code"] == "bad_request"
    resp = await harness.client.post("/v1/heartbeat", json=report(),
                                     headers=harness.op_headers)
    assert resp.status == 403


async def test_dashboard_states_reasons_lag_and_agreement(harness: Harness) -> None:
    clinic, (a, b, c) = await harness.practice_with_sites(3)
    pid = clinic.practice_id
    for _ in range(4):
        assert (await harness.push(a, clinic.seal(a.site, 2))).status == 200
    assert (await harness.push(a, b"junk")).status == 400  # a refused push, counted
    # a and b applied everything, nothing waiting, same digest: they agree.
    assert await beat(harness, a, cursor=4) == 204
    assert await beat(harness, b, cursor=4) == 204
    # c went offline 10 minutes ago at cursor 1 with 57 changes waiting.
    harness.clock.now -= 600_000
    assert await beat(harness, c, cursor=1, outbox_depth=57, oldest_unpushed_age_s=30.0,
                      state_digest=DIGEST_B) == 204
    harness.clock.now += 600_000
    view = await dashboard(harness)
    sites = sites_of(view, pid)
    sa, sb, sc = (sites[str(m.site.site_id)] for m in (a, b, c))
    assert (sa["state"], sb["state"]) == ("green", "green")
    assert sa["reasons"][0]["text"] == "up to date"
    assert (sa["cursor"], sa["lag_batches"], sa["lag_s"]) == (4, 0, 0.0)
    assert sa["rejections"] == {"malformed": 1}
    assert sc["state"] == "red"
    offline = next(r for r in sc["reasons"] if r["code"] == "offline")
    assert offline["text"] == "offline since {time} \u2014 57 changes waiting"
    assert offline["at_ms"] == harness.clock.now - 600_000
    assert (sc["lag_batches"], sc["lag_s"]) == (3, 0.0)  # batches received at "now"
    practice = next(p for p in view["practices"] if p["practice_id"] == str(pid))
    assert practice["state"] == "red" and practice["head"] == 4
    assert practice["agreement"] == [{"cursor": 4, "agree": True, "groups": [
        {"state_digest": DIGEST_A, "site_ids": sorted([str(a.site.site_id),
                                                       str(b.site.site_id)])}]}]
    # b now reports another digest at the same position: a loud disagreement.
    assert await beat(harness, b, cursor=4, state_digest=DIGEST_B) == 204
    view = await dashboard(harness)
    sites = sites_of(view, pid)
    for member in (a, b):
        row = sites[str(member.site.site_id)]
        assert row["state"] == "red"
        assert any(r["code"] == "digest_mismatch" and "hub position 4 disagree" in r["text"]
                   for r in row["reasons"])
    # Lag in seconds is the age of the oldest batch not applied.
    harness.clock.now += 400_000
    assert await beat(harness, b, cursor=2) == 204
    row = sites_of(await dashboard(harness), pid)[str(b.site.site_id)]
    assert (row["lag_batches"], row["lag_s"]) == (2, 400.0)
    assert any(r["code"] == "behind" and r["level"] == "amber" for r in row["reasons"])


def test_agreement_groups_only_sites_with_nothing_waiting() -> None:
    from uuid import uuid4

    from cloud_hub.api.messages import HeartbeatIn
    s1, s2, s3, s4 = (uuid4() for _ in range(4))
    hb = [(s1, HeartbeatIn.model_validate(report(cursor=7)), True),
          (s2, HeartbeatIn.model_validate(report(cursor=7, state_digest=DIGEST_B)), True),
          (s3, HeartbeatIn.model_validate(report(cursor=7, outbox_depth=3,
                                                 state_digest=DIGEST_B)), True),
          (s4, HeartbeatIn.model_validate(report(cursor=7, state_digest=DIGEST_B)), False)]
    groups = agreement(hb)
    assert len(groups) == 1 and not groups[0].agree
    assert {tuple(g.site_ids) for g in groups[0].groups} == {(s1,), (s2,)}
    assert Thresholds().offline_after_s == 120


async def test_operator_approves_a_restored_site_and_it_is_audited(harness: Harness) -> None:
    clinic, (a,) = await harness.practice_with_sites(1)
    pid = clinic.practice_id
    restored = await harness.enroll(clinic, await harness.token(pid, harness.op_headers))
    assert restored.status == "pending"
    # Every approved site is lost: revoke the last one, as the operator would.
    url = f"/v1/practices/{pid}/sites/{a.site.site_id}/revoke"
    assert (await harness.client.post(url, headers=harness.op_headers)).status == 200
    harness.clock.now += 1000
    approve = f"/v1/practices/{pid}/sites/{restored.site.site_id}/approve"
    assert (await harness.client.post(approve, headers=restored.headers)).status == 403
    resp = await harness.client.post(approve, headers=harness.op_headers)
    assert resp.status == 200 and (await resp.json())["status"] == "approved"
    assert (await harness.client.get("/v1/sites", headers=restored.headers)).status == 200
    again = f"/v1/practices/{pid}/sites/{a.site.site_id}/approve"
    resp = await harness.client.post(again, headers=harness.op_headers)
    assert resp.status == 403 and (await resp.json())["code"] == "forbidden"
    actions = await harness.store.operator_actions(PracticeId(pid))
    assert [(x.action, x.site_id) for x in actions] == [
        ("revoked", a.site.site_id), ("approved", restored.site.site_id)]
    assert all(len(x.operator_ref) == 16 and x.operator_ref not in harness.operator
               for x in actions)
    site = await harness.store.get_site(PracticeId(pid), SiteId(restored.site.site_id))
    assert site is not None and site.status is SiteStatus.APPROVED


async def test_metrics_need_a_credential_and_carry_ids_only(harness: Harness) -> None:
    clinic, (a, b) = await harness.practice_with_sites()
    assert (await harness.push(a, clinic.seal(a.site, 3))).status == 200
    assert (await harness.push(a, b"junk")).status == 400
    assert await beat(harness, b, cursor=0) == 204
    assert (await harness.client.get("/metrics")).status == 401
    assert (await harness.client.get("/metrics", headers=a.headers)).status == 403
    resp = await harness.client.get("/metrics", headers=harness.op_headers)
    assert resp.status == 200
    text = await resp.text()
    pid, sid = clinic.practice_id, b.site.site_id
    assert 'chartsync_hub_pushes_total{outcome="stored"} 1.0' in text
    assert 'chartsync_hub_push_rejections_total{code="malformed"} 1.0' in text
    assert "chartsync_hub_changes_accepted_total 3.0" in text
    assert "chartsync_hub_push_seconds_count 2.0" in text
    assert f'chartsync_hub_practice_head{{practice="{pid}"}} 1.0' in text
    assert f'chartsync_hub_site_lag_batches{{practice="{pid}",site="{sid}"}} 1.0' in text
    assert "Sato Clinic" not in text and "main" not in text.replace("chartsync", "")
    with_config(harness, metrics_token="prom-0123456789abcdef")
    scrape = await harness.client.get("/metrics", headers={
        "Authorization": "Bearer prom-0123456789abcdef"})
    assert scrape.status == 200
    wrong = await harness.client.get("/metrics", headers={
        "Authorization": "Bearer prom-0123456789abcdeX"})
    assert wrong.status == 401


def test_reasons_for_each_flag() -> None:
    from uuid import uuid4

    from cloud_hub.dashboard import PracticeFacts, practice_view
    from cloud_hub.store.base import Heartbeat, PracticeRecord, SiteActivity, SiteRecord

    now = 10_000_000
    pid = PracticeId(uuid4())
    ids = [SiteId(uuid4()) for _ in range(5)]
    statuses = [SiteStatus.APPROVED, SiteStatus.APPROVED, SiteStatus.PENDING,
                SiteStatus.REVOKED, SiteStatus.APPROVED]
    sites = [SiteRecord(pid, sid, f"s{i}", b"v" * 32, b"b" * 32, b"h", st, None, 0)
             for i, (sid, st) in enumerate(zip(ids, statuses, strict=True))]
    troubled = report(cursor=5, dead_letters=2, upgrade_needed="protocol 1.1",
                      clock_offset_ms=-4500, guard_held=True, held_batches=1,
                      gaps=[{"origin": str(ids[1]), "missing_from": 3, "missing_to": 4}],
                      last_error="hub refused: chain_broken")
    import orjson
    activity = [SiteActivity(ids[0], now, Heartbeat(ids[0], orjson.dumps(troubled), now), {}),
                SiteActivity(ids[1], now - 5000, None, {"chain_broken": 3})]
    facts = PracticeFacts(PracticeRecord(pid, "P", 0), 5, 0, sites, activity, {ids[1]: 4}, {})
    view = practice_view(facts, now, Thresholds())
    rows = {s.site_id: s for s in view.sites}
    codes = [r.code for r in rows[ids[0]].reasons]
    assert codes == ["dead_letters", "gaps", "upgrade", "guard", "held", "clock", "error"]
    assert rows[ids[0]].state == "red" and "-4.5 s" in rows[ids[0]].reasons[5].text
    assert (rows[ids[1]].state, rows[ids[1]].reasons[0].code) == ("green", "no_heartbeat")
    assert rows[ids[1]].concurrent_edits == 4 and rows[ids[1]].rejections == {"chain_broken": 3}
    assert rows[ids[2]].state == "amber" and rows[ids[2]].reasons[0].code == "pending"
    assert rows[ids[3]].state == "grey"
    assert rows[ids[4]].reasons[0].code == "never_seen"
    assert view.state == "red"
