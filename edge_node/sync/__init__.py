"""The edge's side of sync (issue #5).

    hub_client   every hub endpoint the edge uses, typed, TLS enforced
    errors       SyncError tree (HubUnreachable, HubRefused, ...)
"""
