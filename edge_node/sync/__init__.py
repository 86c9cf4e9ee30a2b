"""The edge's side of sync: enrollment, pusher, puller, blast-radius guard, the sync loop.

    enroll.py    `edge init --hub`, invite, approve, revoke, re-enroll on a rebuilt hub
    pusher.py    outbox → sealed batches → hub, with verified receipts
    puller.py    hub batches → verified, chained, merged (or held with a reason)
    guard.py     the blast-radius guard's verdict and an admin's discard
    recovery.py  a hub rebuilt, restored from an older backup, or trimmed past the cursor
    mailbox.py   this site's approval and the practice keys sealed to it
    heartbeat.py what the hub's dashboard hears from this site
    loop.py      the supervisor of the sync tasks

The hub itself is reached through `edge_node.hub_link`; tables only through
`edge_node.store` (typed reads and `LedgerOp` writes; no SQL here).
"""
