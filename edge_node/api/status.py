"""GET /status: what clinic staff and the operator see at a glance (JSON).

The sync loop (issue #5) fills `practice_id`, `last_push`, `last_pull`,
`hub_reachable` and `hub`; until then they are null and the outbox only grows.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from edge_node.api.context import edge_of
from edge_node.store.apply import iso_instant


async def get_status(request: web.Request) -> web.Response:
    edge = edge_of(request)
    outbox, resources, conflicts = await edge.reader.status_counts()
    stats = edge.writer.statistics()
    body = {
        "site_id": str(edge.site.site_id),
        "practice_id": str(edge.site.practice_id) if edge.site.practice_id else None,
        "outbox_depth": outbox,
        "last_push": None,
        "last_pull": None,
        "hub_reachable": None,
        "hub": None,
        "resources": resources,
        "open_conflicts": conflicts,
        "next_seq": stats.next_seq,
        "group_commits": stats.groups,
        "largest_group": stats.largest_group,
        "now": iso_instant(edge.clock()),
    }
    return web.json_response(body, dumps=lambda v: orjson.dumps(v).decode())
