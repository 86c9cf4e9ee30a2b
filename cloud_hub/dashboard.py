"""The operator dashboard's view: per practice and site, a state, plain reasons and figures.

Pure: records in (sites, their activity, heads, when batches were received),
a `DashboardOut` value out; `now_ms` and the thresholds are inputs.  The JSON
route (`GET /v1/dashboard`) and the page (`GET /dashboard`) show this value;
`/metrics` reads the same lags.

States: red — someone must act (offline, refused batches, missing batches,
an upgrade, the mass-change guard, sites that disagree); amber — watch it
(behind for long, changes not pushed for long, held batches, clock off, a
recent error, waiting for approval, never reported); green — up to date or
catching up; grey — revoked.

Agreement: sites that report the same cursor with an empty outbox must hold
identical charts, so their state digests must be equal.  They are grouped by
cursor; a group with more than one digest is a disagreement, shown loudly on
every site of the group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, ValidationError

from cloud_hub.api.messages import HeartbeatIn
from cloud_hub.store.base import PracticeRecord, SiteActivity, SiteRecord, SiteStatus

State = Literal["red", "amber", "green", "grey"]
_Add = Callable[[State, str, str], None]
_RANK: Final[dict[str, int]] = {"grey": 0, "green": 1, "amber": 2, "red": 3}
_OUT = ConfigDict(frozen=True)


@dataclass(frozen=True, slots=True)
class Thresholds:
    offline_after_s: int = 120
    lag_alert_s: int = 300
    clock_offset_alert_ms: int = 2000


class Reason(BaseModel):
    """One plain-language reason; `{time}` in `text` stands for `at_ms` in local time."""

    model_config = _OUT
    level: State
    code: str
    text: str
    at_ms: int | None = None


class SiteView(BaseModel):
    model_config = _OUT
    site_id: UUID
    name: str
    status: str
    state: State
    reasons: list[Reason]
    last_seen_ms: int | None
    last_heartbeat_ms: int | None
    last_push_ms: int | None
    cursor: int | None
    lag_batches: int | None
    lag_s: float | None
    outbox_depth: int | None
    oldest_unpushed_age_s: float | None
    concurrent_edits: int
    rejections: dict[str, int]
    software_version: str | None
    protocol_version: str | None
    held_batches: int
    dead_letters: int
    gaps: int
    upgrade_needed: str | None
    clock_offset_ms: int | None
    last_error: str | None
    guard_held: bool
    state_digest: str | None


class DigestGroup(BaseModel):
    model_config = _OUT
    state_digest: str
    site_ids: list[UUID]


class Agreement(BaseModel):
    """Sites at one cursor with nothing waiting: `agree` when all digests are equal."""

    model_config = _OUT
    cursor: int
    agree: bool
    groups: list[DigestGroup]


class PracticeView(BaseModel):
    model_config = _OUT
    practice_id: UUID
    name: str
    head: int
    trimmed_through: int
    state: State
    agreement: list[Agreement]
    sites: list[SiteView]


class DashboardOut(BaseModel):
    model_config = _OUT
    generated_ms: int
    practices: list[PracticeView]


@dataclass(frozen=True, slots=True)
class PracticeFacts:
    """What the store says about one practice, read by the API for `practice_view`."""

    practice: PracticeRecord
    head: int
    trimmed_through: int
    sites: Sequence[SiteRecord]
    activity: Sequence[SiteActivity]
    concurrent_edits: Mapping[UUID, int]
    #: received_ms of batches at the sites' `cursor + 1` (and of the oldest kept).
    received_ms: Mapping[int, int]


def report_of(activity: SiteActivity) -> HeartbeatIn | None:
    """The stored heartbeat as a model (None if none, or if it no longer parses)."""
    if activity.heartbeat is None:
        return None
    try:
        return HeartbeatIn.model_validate_json(activity.heartbeat.report)
    except ValidationError:
        return None


def wanted_receipts(facts_head: int, trimmed_through: int,
                    reports: Sequence[HeartbeatIn | None]) -> list[int]:
    """The hub sequences whose receive times the lag in seconds needs."""
    wanted = {max(r.cursor, trimmed_through) + 1 for r in reports
              if r is not None and r.cursor < facts_head}
    return sorted(wanted)


def lag_seconds(head: int, trimmed_through: int, cursor: int, received: Mapping[int, int],
                now_ms: int) -> float | None:
    """Age of the oldest batch a site at `cursor` has not applied (0 when up to date)."""
    if cursor >= head:
        return 0.0
    at = received.get(max(cursor, trimmed_through) + 1)
    return max(0.0, (now_ms - at) / 1000) if at is not None else None


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{int(seconds)} s"
    if seconds < 5400:
        return f"{int(seconds // 60)} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{int(seconds // 86400)} days"


def _changes(n: int) -> str:
    return f"{n} change{'s' if n != 1 else ''}"


def agreement(views: Sequence[tuple[UUID, HeartbeatIn | None, bool]]) -> list[Agreement]:
    """Group (site, report, active) by cursor among active sites with an empty outbox."""
    by_cursor: dict[int, dict[str, list[UUID]]] = {}
    for site_id, report, active in views:
        if not active or report is None or report.state_digest is None or report.outbox_depth:
            continue
        by_cursor.setdefault(report.cursor, {}).setdefault(report.state_digest, []).append(
            site_id)
    out = []
    for cursor in sorted(by_cursor):
        digests = by_cursor[cursor]
        if sum(len(s) for s in digests.values()) < 2:
            continue
        groups = [DigestGroup(state_digest=d, site_ids=sorted(s, key=str))
                  for d, s in sorted(digests.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
        out.append(Agreement(cursor=cursor, agree=len(groups) == 1, groups=groups))
    return out


def site_view(site: SiteRecord, activity: SiteActivity, report: HeartbeatIn | None,
              facts: PracticeFacts, disagree_at: int | None, now_ms: int,
              limits: Thresholds) -> SiteView:
    """One site's row: figures, state and reasons."""
    hb_ms = activity.heartbeat.received_ms if activity.heartbeat else None
    seen = [t for t in (hb_ms, activity.last_push_ms) if t is not None]
    last_seen = max(seen) if seen else None
    cursor = report.cursor if report else None
    lag_b = max(0, facts.head - cursor) if cursor is not None else None
    lag_s = (lag_seconds(facts.head, facts.trimmed_through, cursor, facts.received_ms, now_ms)
             if cursor is not None else None)
    reasons: list[Reason] = []

    def add(level: State, code: str, text: str, at_ms: int | None = None) -> None:
        reasons.append(Reason(level=level, code=code, text=text, at_ms=at_ms))

    if site.status is SiteStatus.REVOKED:
        add("grey", "revoked", "revoked: no longer syncs")
    elif site.status is SiteStatus.PENDING:
        add("amber", "pending", "waiting for approval (compare the key fingerprint)")
    if site.status is SiteStatus.APPROVED:
        waiting = report.outbox_depth if report else 0
        if last_seen is None:
            add("amber", "never_seen", "has not reported since it was enrolled")
        elif (now_ms - last_seen) / 1000 > limits.offline_after_s:
            tail = f" — {_changes(waiting)} waiting" if waiting else ""
            add("red", "offline", "offline since {time}" + tail, last_seen)
        if disagree_at is not None:
            add("red", "digest_mismatch", f"sites at hub position {disagree_at} disagree: "
                "their charts differ (check the sites' conflicts and restore the odd one "
                "from a snapshot)")
        if report is not None:
            _report_reasons(report, add, lag_b, lag_s, limits)
    if not reasons and cursor is None:
        add("green", "no_heartbeat", "pushes arrive; no heartbeat yet, so its position is "
            "unknown")
    elif not reasons:
        add("green", "ok", "up to date" if not lag_b else
            f"catching up: {lag_b} batches behind")
    state = max((r.level for r in reasons), key=lambda lv: _RANK[lv])
    return SiteView(
        site_id=site.site_id, name=site.name, status=site.status.value, state=state,
        reasons=sorted(reasons, key=lambda r: -_RANK[r.level]), last_seen_ms=last_seen,
        last_heartbeat_ms=hb_ms, last_push_ms=activity.last_push_ms, cursor=cursor,
        lag_batches=lag_b, lag_s=lag_s, outbox_depth=report.outbox_depth if report else None,
        oldest_unpushed_age_s=report.oldest_unpushed_age_s if report else None,
        concurrent_edits=facts.concurrent_edits.get(site.site_id, 0),
        rejections=dict(activity.rejections),
        software_version=report.software_version if report else None,
        protocol_version=report.protocol_version if report else None,
        held_batches=report.held_batches if report else 0,
        dead_letters=report.dead_letters if report else 0,
        gaps=len(report.gaps) if report else 0,
        upgrade_needed=report.upgrade_needed if report else None,
        clock_offset_ms=report.clock_offset_ms if report else None,
        last_error=report.last_error if report else None,
        guard_held=report.guard_held if report else False,
        state_digest=report.state_digest if report else None)


def _report_reasons(report: HeartbeatIn, add: _Add, lag_b: int | None, lag_s: float | None,
                    limits: Thresholds) -> None:
    if report.dead_letters:
        add("red", "dead_letters", f"{report.dead_letters} batches refused by the hub "
            "(dead letters): see the site's sync status")
    if report.gaps:
        origins = len({g.origin for g in report.gaps})
        add("red", "gaps", f"missing batches from {origins} other site(s)")
    if report.upgrade_needed:
        add("red", "upgrade", f"needs a software upgrade: {report.upgrade_needed}")
    if report.guard_held:
        add("red", "guard", "mass-change guard is holding this site's changes: an "
            "administrator must review and approve")
    if report.held_batches:
        add("amber", "held", f"{report.held_batches} received batches held back")
    if lag_b and lag_s is not None and lag_s > limits.lag_alert_s:
        add("amber", "behind", f"{lag_b} batches behind; the oldest has waited "
            f"{_duration(lag_s)}")
    age = report.oldest_unpushed_age_s
    if report.outbox_depth and age is not None and age > limits.lag_alert_s:
        add("amber", "not_pushed", f"{_changes(report.outbox_depth)} not pushed for "
            f"{_duration(age)}")
    if report.clock_offset_ms is not None and \
            abs(report.clock_offset_ms) > limits.clock_offset_alert_ms:
        add("amber", "clock", f"clock off by {report.clock_offset_ms / 1000:+.1f} s "
            "(check NTP on the site)")
    if report.last_error:
        add("amber", "error", f"last error: {report.last_error}")


def practice_view(facts: PracticeFacts, now_ms: int, limits: Thresholds) -> PracticeView:
    """The practice's rows, agreement groups and overall (worst) state."""
    activity = {a.site_id: a for a in facts.activity}
    reports = {s.site_id: report_of(activity[s.site_id]) if s.site_id in activity else None
               for s in facts.sites}
    groups = agreement([(s.site_id, reports[s.site_id], s.status is SiteStatus.APPROVED)
                        for s in facts.sites])
    disagree = {sid: g.cursor for g in groups if not g.agree for grp in g.groups
                for sid in grp.site_ids}
    views = [site_view(s, activity.get(s.site_id, SiteActivity(s.site_id, None, None, {})),
                       reports[s.site_id], facts, disagree.get(s.site_id), now_ms, limits)
             for s in facts.sites]
    state: State = max((v.state for v in views), key=lambda lv: _RANK[lv], default="green")
    return PracticeView(practice_id=facts.practice.practice_id, name=facts.practice.name,
                        head=facts.head, trimmed_through=facts.trimmed_through,
                        state="green" if state == "grey" else state, agreement=groups,
                        sites=views)
