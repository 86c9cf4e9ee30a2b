"""The edge's client of the hub API: one method per endpoint, typed results, TLS enforced.

    settings = HubSettings.parse("https://hub.example.jp", ca_file=None, insecure_http=False)
    async with HubClient.open(settings, credential=cred) as hub:
        ack = await hub.push(sealed)                    # PushAck (receipt not yet verified)
        page = await hub.pull(after=cursor, wait_s=25)  # PullResponse: batches, head, log_id
        async for pulled in hub.stream(after=cursor):   # WebSocket, one batch per frame
            ...

TLS: the hub's certificate is verified against the system store or the
`ca_file` given (`--hub-ca`); TLS 1.2 is the minimum, 1.3 is negotiated when
both sides have it.  `http://` is refused unless `insecure_http` (loopback
demos only).

Errors (the adapter rule: aiohttp's exceptions stop here):
`HubUnreachable` for connection/TLS/timeouts and 5xx without a problem body;
`HubRefused` for every problem-details answer, keeping the hub's `code`,
`retryable`, and on `chain_broken` the `expected_seq` / `expected_prev_hash`.
Credentials are never logged or put in messages.  The typed results are in
`hub_link.answers` (also named here).
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import logging
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit
from uuid import UUID

import aiohttp
import orjson

from edge_node.hub_link.answers import (
    Enrollment,
    EnrollmentToken,
    HubKey,
    HubSnapshot,
    Mail,
    PracticeCreated,
    SiteInfo,
    SnapshotDownload,
    b64,
    optional_uuid,
    site_info,
)
from edge_node.hub_link.errors import HubRefused, HubUnreachable, InsecureHubUrl
from sync_protocol.errors import MalformedInput
from sync_protocol.keys import SitePublicKeys
from sync_protocol.models import PulledBatch, PullResponse, PushAck, push_ack_from_json
from sync_protocol.pull_wire import decode_pull_response, decode_pulled
from sync_protocol.push_wire import MEDIA_TYPE_MANY, decode_push_answer, encode_push_many
from sync_protocol.snapshot_signature import HEADERS as ATTESTATION_HEADERS
from sync_protocol.snapshot_signature import SnapshotAttestation, attestation_headers

log = logging.getLogger(__name__)

_OCTETS: Final = "application/octet-stream"
_CLOSE_REVOKED: Final = 4403
_LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})


# --- settings and TLS ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HubSettings:
    """Where the hub is and how to trust it."""

    url: str
    ca_file: Path | None = None
    insecure_http: bool = False
    connect_timeout_s: float = 10.0
    request_timeout_s: float = 120.0

    @classmethod
    def parse(cls, url: str, *, ca_file: Path | None = None, insecure_http: bool = False,
              ) -> HubSettings:
        """Check the URL; raises `InsecureHubUrl` for http:// without `insecure_http`."""
        check_hub_url(url, insecure_http=insecure_http)
        return cls(url.rstrip("/"), ca_file, insecure_http)


def check_hub_url(url: str, *, insecure_http: bool) -> None:
    """Refuse anything but https:// (or http:// to a loopback hub with an explicit
    `insecure_http`: 127.0.0.0/8, ::1 or localhost, where nothing crosses a network)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname:
        if insecure_http and is_loopback_host(parts.hostname):
            return
        if insecure_http:
            raise InsecureHubUrl(
                f"hub URL {url!r} is plain http to {parts.hostname}, which is not this "
                "machine; --insecure-http is accepted only for a hub on 127.0.0.1, ::1 or "
                "localhost", hint="use the hub's https:// URL (with --hub-ca for a private "
                "CA), or run the trial hub on this machine")
        raise InsecureHubUrl(
            f"hub URL {url!r} is plain http; charts would travel without TLS",
            hint="use https://, or pass --insecure-http for a loopback demo only")
    raise InsecureHubUrl(f"hub URL {url!r} is not an http(s) URL",
                         hint="example: --hub https://hub.example.jp")


def is_loopback_host(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def hub_ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    """A client context: certificate and host name verified, TLS 1.2 minimum."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    if ca_file is not None:
        try:
            ctx.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise HubUnreachable(f"cannot read the hub CA file {ca_file}: {exc}",
                                 hint="pass a PEM file with --hub-ca") from exc
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    return ctx


# --- the client ------------------------------------------------------------------------


class HubClient:
    """HTTP(S) + WebSocket client of one hub; one aiohttp session for its lifetime."""

    def __init__(self, settings: HubSettings, session: aiohttp.ClientSession,
                 ssl_ctx: ssl.SSLContext | None, credential: str | None) -> None:
        self.settings = settings
        self._session = session
        self._ssl: ssl.SSLContext | bool = ssl_ctx if ssl_ctx is not None else False
        self._credential = credential

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: HubSettings, *, credential: str | None = None
                   ) -> AsyncIterator[HubClient]:
        check_hub_url(settings.url, insecure_http=settings.insecure_http)
        ssl_ctx = hub_ssl_context(settings.ca_file) if settings.url.startswith("https") \
            else None
        timeout = aiohttp.ClientTimeout(total=None, connect=settings.connect_timeout_s,
                                        sock_connect=settings.connect_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
            yield cls(settings, session, ssl_ctx, credential)

    def authenticate(self, credential: str) -> None:
        """Use `credential` (a site's css_… or an operator's cso_…) from now on."""
        self._credential = credential

    def _headers(self, credential: str | None = None) -> dict[str, str]:
        cred = credential or self._credential
        return {"Authorization": f"Bearer {cred}"} if cred else {}

    def _url(self, path: str) -> str:
        return self.settings.url + path

    # --- plumbing ------------------------------------------------------------------

    @asynccontextmanager
    async def _request(self, method: str, path: str, *, credential: str | None = None,
                       json: Any = None, data: Any = None, params: Mapping[str, Any] | None
                       = None, content_type: str | None = None,
                       timeout_s: float | None = None, extra_headers: Mapping[str, str] |
                       None = None) -> AsyncIterator[aiohttp.ClientResponse]:
        headers = self._headers(credential) | dict(extra_headers or {})
        if content_type:
            headers["Content-Type"] = content_type
        total = timeout_s if timeout_s is not None else self.settings.request_timeout_s
        try:
            async with self._session.request(
                    method, self._url(path), json=json, data=data, params=params,
                    headers=headers, ssl=self._ssl,
                    timeout=aiohttp.ClientTimeout(total=total,
                                                  connect=self.settings.connect_timeout_s)
            ) as resp:
                if resp.status >= 400:
                    raise await _refusal(resp, method, path)
                yield resp
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise HubUnreachable(f"hub {self.settings.url} not reachable for {method} {path}: "
                                 f"{_describe(exc)}",
                                 hint="check the link and hub URL; the edge keeps working "
                                 "offline and retries") from exc

    async def _json(self, method: str, path: str, **kw: Any) -> Any:
        async with self._request(method, path, **kw) as resp:
            if resp.status == 204:
                return None
            return orjson.loads(await resp.read())

    # --- public, operator ----------------------------------------------------------

    async def hub_key(self) -> HubKey:
        raw = await self._json("GET", "/v1/hub-key")
        return HubKey(b64(raw["verify_key"]), raw["fingerprint"], optional_uuid(raw.get("log_id")))

    async def create_practice(self, name: str, *, operator_token: str,
                              practice_id: UUID | None = None) -> PracticeCreated:
        """`practice_id`: re-create a practice under its old id on a rebuilt hub."""
        body = {"name": name} if practice_id is None else {"name": name,
                                                           "practice_id": str(practice_id)}
        raw = await self._json("POST", "/v1/practices", json=body,
                               credential=operator_token)
        return PracticeCreated(UUID(raw["practice_id"]), raw["name"])

    async def create_enrollment_token(self, practice_id: UUID, *, ttl_s: int | None = None,
                                      credential: str | None = None) -> EnrollmentToken:
        """A one-time token: as the operator (`credential`) or as this approved site (invite)."""
        body = {"ttl_s": ttl_s} if ttl_s else {}
        raw = await self._json("POST", f"/v1/practices/{practice_id}/enrollment-tokens",
                               json=body, credential=credential)
        return EnrollmentToken(UUID(raw["practice_id"]), raw["token"], int(raw["expires_ms"]))

    async def enroll(self, token: str, name: str, keys: SitePublicKeys, *,
                     site_id: UUID | None = None) -> Enrollment:
        """`site_id`: re-enroll an existing site under its id and keys (a rebuilt hub)."""
        body = {"token": token, "name": name,
                "verify_key": base64.b64encode(keys.verify_key).decode(),
                "box_key": base64.b64encode(keys.box_key).decode()}
        if site_id is not None:
            body["site_id"] = str(site_id)
        raw = await self._json("POST", "/v1/enroll", json=body)
        return Enrollment(UUID(raw["practice_id"]), UUID(raw["site_id"]), raw["credential"],
                          raw["status"], raw["fingerprint"], b64(raw["hub_verify_key"]))

    # --- registry and mailbox ------------------------------------------------------

    async def me(self) -> SiteInfo:
        return site_info(await self._json("GET", "/v1/me"))

    async def sites(self) -> list[SiteInfo]:
        raw = await self._json("GET", "/v1/sites")
        return [site_info(s) for s in raw["sites"]]

    async def approve(self, site_id: UUID) -> SiteInfo:
        return site_info(await self._json("POST", f"/v1/sites/{site_id}/approve"))

    async def revoke(self, site_id: UUID) -> SiteInfo:
        return site_info(await self._json("POST", f"/v1/sites/{site_id}/revoke"))

    async def roster(self, *, after: int = -1) -> list[bytes]:
        """The practice roster's signed entries after position `after` (unverified)."""
        raw = await self._json("GET", "/v1/roster", params={"after": str(after)})
        return [b64(e) for e in raw["entries"]]

    async def post_roster_entry(self, raw_entry: bytes) -> None:
        """Append a signed entry; `HubRefused` with hub_code `roster_moved` when another
        site took the position first."""
        await self._json("POST", "/v1/roster",
                         json={"entry": base64.b64encode(raw_entry).decode()})

    async def kit_epochs(self) -> list[tuple[int, str, bytes]]:
        """(epoch, kit fingerprint, sealed) of every epoch key sealed to a recovery kit."""
        raw = await self._json("GET", "/v1/kit-epochs")
        return [(int(i["epoch"]), str(i["kit_fingerprint"]), b64(i["sealed"]))
                for i in raw["items"]]

    async def put_kit_epoch(self, epoch: int, kit_fingerprint: str, sealed: bytes) -> None:
        await self._json("PUT", f"/v1/kit-epochs/{epoch}",
                         json={"kit_fingerprint": kit_fingerprint,
                               "sealed": base64.b64encode(sealed).decode()})

    async def mailbox(self) -> list[Mail]:
        raw = await self._json("GET", "/v1/mailbox")
        return [Mail(UUID(m["mail_id"]), UUID(m["from_site"]), b64(m["sealed"]),
                     int(m["created_ms"])) for m in raw["items"]]

    async def post_mail(self, to_site: UUID, sealed: bytes) -> UUID:
        raw = await self._json("POST", f"/v1/mailbox/{to_site}", data=sealed,
                               content_type=_OCTETS)
        return UUID(raw["mail_id"])

    async def delete_mail(self, mail_id: UUID) -> None:
        await self._json("DELETE", f"/v1/mailbox/{mail_id}")

    # --- batches -------------------------------------------------------------------

    async def push(self, sealed: bytes) -> PushAck:
        """Push one sealed batch (own or, for a rebuild, relayed).  Receipt unverified."""
        raw = await self._json("POST", "/v1/batches", data=sealed, content_type=_OCTETS)
        return push_ack_from_json(raw)

    async def push_many(self, sealed: list[bytes]) -> tuple[list[PushAck], HubRefused | None]:
        """Push several sealed batches in one request (`sync_protocol.push_wire`).

        Returns the acks of the batches stored, in order, and the hub's refusal of the
        next one (None if all were stored).  Raises `HubRefused` when the request as a
        whole is refused (for example 400 from a hub of the previous release, or the
        first batch's refusal), and `HubUnreachable` also for an answer that is not a
        push answer for these batches (`push_wire.decode_push_answer`).  Receipts
        unverified.
        """
        raw = await self._json("POST", "/v1/batches", data=encode_push_many(sealed),
                               content_type=MEDIA_TYPE_MANY)
        try:
            answer = decode_push_answer(raw, sent=len(sealed))
        except MalformedInput as exc:
            raise HubUnreachable(f"hub {self.settings.url} gave no usable answer to POST "
                                 f"/v1/batches: {exc.message}",
                                 hint="check that hub.url points at a chartsync hub; the "
                                 "edge retries") from exc
        refused = answer.refused
        return list(answer.acks), (None if refused is None else _refusal_from(
            dict(refused), int(refused.get("status") or 400), "POST", "/v1/batches"))

    async def pull(self, *, after: int, limit: int = 100, wait_s: float = 0.0) -> PullResponse:
        params = {"after": str(after), "limit": str(limit), "wait_s": str(wait_s)}
        async with self._request("GET", "/v1/batches", params=params,
                                 timeout_s=wait_s + self.settings.request_timeout_s) as resp:
            try:
                data = await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise HubUnreachable(f"pull broke off: {_describe(exc)}",
                                     hint="the edge retries") from exc
        return decode_pull_response(data)

    async def stream(self, *, after: int) -> AsyncIterator[PulledBatch]:
        """Batches after `after`, one per WebSocket frame, until the hub closes.

        Raises `HubUnreachable` when the connection drops, `HubRefused`
        (`site_revoked`) when the hub ends the stream because this site was revoked.
        """
        try:
            async with self._session.ws_connect(
                    self._url("/v1/stream"), params={"after": str(after)},
                    headers=self._headers(), ssl=self._ssl, heartbeat=20.0,
                    max_msg_size=1 << 30) as ws:
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        yield decode_pulled(msg.data)
                    elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED,
                                      aiohttp.WSMsgType.CLOSE):
                        break
                if ws.close_code == _CLOSE_REVOKED:
                    raise HubRefused("the hub ended the stream: this site is no longer approved",
                                     hint="ask an approved site or the operator about this "
                                     "site's enrollment", hub_code="site_revoked", status=403)
        except aiohttp.WSServerHandshakeError as exc:
            raise HubRefused(f"the hub refused the stream (HTTP {exc.status})",
                             hint="check this site's enrollment", hub_code="stream_refused",
                             status=exc.status) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise HubUnreachable(f"stream from {self.settings.url} broke off: "
                                 f"{_describe(exc)}", hint="the edge reconnects") from exc
        raise HubUnreachable("the hub closed the stream", hint="the edge reconnects")

    # --- snapshots -----------------------------------------------------------------

    async def put_snapshot(self, attestation: SnapshotAttestation,
                           body: bytes | AsyncIterable[bytes]) -> None:
        """Upload a sealed snapshot with its attestation (bytes or chunks).

        The hub stores it only if this site signed it, at a sane position, with
        these bytes; else `HubRefused` (`malformed`, `bad_signature`, `wrong_origin`,
        `tampered`, `snapshot_behind`, `bad_request`).
        """
        await self._json("PUT", "/v1/snapshots", data=body, content_type=_OCTETS,
                         extra_headers=attestation_headers(attestation))

    async def list_snapshots(self) -> list[HubSnapshot]:
        """The practice's verified snapshots at the hub, newest first."""
        raw = await self._json("GET", "/v1/snapshots")
        try:
            return [HubSnapshot(UUID(s["snapshot_id"]), UUID(s["site_id"]), int(s["hub_seq"]),
                                int(s["key_epoch"]), int(s["size"]), int(s["created_ms"]),
                                bytes.fromhex(s["digest"]), bytes.fromhex(s["signature"]),
                                bool(s["log_after_kept"]))
                    for s in raw["snapshots"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise HubUnreachable(f"hub {self.settings.url} gave no usable snapshot list "
                                 f"({type(exc).__name__})",
                                 hint="check that hub.url points at a chartsync hub") from exc

    @asynccontextmanager
    async def get_latest_snapshot(self, *, offset: int = 0
                                  ) -> AsyncIterator[SnapshotDownload | None]:
        """The latest verified snapshot (None if the practice has none), body streamed.

        With `offset`, asks for the bytes from there on (HTTP Range); a hub that
        answers the whole body instead says so with `offset` 0 in the result.
        """
        async with self.get_snapshot(None, offset=offset) as download:
            yield download

    @asynccontextmanager
    async def get_snapshot(self, snapshot_id: UUID | None, *, offset: int = 0
                           ) -> AsyncIterator[SnapshotDownload | None]:
        """Snapshot `snapshot_id` (None: the latest), body streamed; None if there is none.

        The attestation is in `headers`, unverified: the reader checks it.
        """
        ranged = {"Range": f"bytes={offset}-"} if offset else None
        path = "/v1/snapshots/latest" if snapshot_id is None else f"/v1/snapshots/{snapshot_id}"
        try:
            async with self._request("GET", path, timeout_s=3600,
                                     extra_headers=ranged) as resp:
                start, total = 0, resp.content_length
                found = resp.headers.get("Content-Range", "")
                if resp.status == 206 and found.startswith("bytes "):
                    span, _, whole = found[6:].partition("/")
                    start, total = int(span.partition("-")[0]), int(whole)
                sid = resp.headers.get("X-Snapshot-Id")
                yield SnapshotDownload(int(resp.headers["X-Hub-Seq"]),
                                       int(resp.headers["X-Key-Epoch"]),
                                       UUID(resp.headers["X-Site-Id"]), resp.content_length,
                                       resp, UUID(sid) if sid else None, start, total,
                                       {h: resp.headers[h] for h in ATTESTATION_HEADERS
                                        if h in resp.headers})
        except HubRefused as exc:
            if exc.status != 404:
                raise
            yield None

    # --- operator dashboard --------------------------------------------------------

    async def heartbeat(self, report: Mapping[str, Any]) -> None:
        await self._json("POST", "/v1/heartbeat", json=dict(report))

    async def stats(self) -> dict[str, Any]:
        raw: dict[str, Any] = await self._json("GET", "/v1/stats")
        return raw


async def _refusal(resp: aiohttp.ClientResponse, method: str, path: str) -> HubRefused:
    body: dict[str, Any] = {}
    with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
        parsed = orjson.loads(await resp.read())
        if isinstance(parsed, dict):
            body = parsed
    if resp.status >= 500 and not body:
        return HubRefused(f"hub answered {resp.status} to {method} {path}",
                          hint="the hub is in trouble; the edge retries",
                          hub_code=f"http_{resp.status}", status=resp.status,
                          hub_retryable=True)
    return _refusal_from(body, resp.status, method, path, reason=resp.reason)


def _refusal_from(body: dict[str, Any], status: int, method: str, path: str, *,
                  reason: str | None = None) -> HubRefused:
    """The refusal a problem+json body describes."""
    code = str(body.get("code") or f"http_{status}")
    message = str(body.get("detail") or body.get("message") or reason or "refused")
    expected_hash = body.get("expected_prev_hash")
    return HubRefused(
        f"hub refused {method} {path}: {message}", hint=str(body.get("hint") or ""),
        hub_code=code, status=status, hub_retryable=bool(body.get("retryable")),
        expected_seq=body.get("expected_seq"),
        expected_prev_hash=bytes.fromhex(expected_hash) if expected_hash else None)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "the hub's TLS certificate did not verify (check --hub-ca)"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "TLS handshake failed"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return type(exc).__name__


__all__ = ["HubClient", "HubSettings", "check_hub_url", "hub_ssl_context"]
