"""Snapshots, bootstrap and restore: a site's charts as one sealed, streamed file.

    export.py       consistent copy (the store's) → sealed snapshot file
    staging.py      snapshot file → verified records → the store's staging file, resumable
    download.py     a snapshot from the hub: signature checked before writing, digest
                    before staging
    bootstrap.py    download a snapshot (latest or chosen), stage, install
    rebootstrap.py  a running site the hub's log no longer covers: snapshot + own changes
    snapshotter.py  the periodic upload inside `edge serve` (`snapshot_every_changes`)
    progress.py     rich bar with time left, or JSON lines
    errors.py       the snapshot errors (defined in `edge_node.errors`)

The database side lives in `store/`: `snapshot_records` (what a snapshot
holds), `snapshot_position` (the sync tables it carries or checks),
`snapshot_export` (reading the consistent copy), `snapshot_staging` (the
staging file) and `snapshot_install` (putting it in place).  This folder reads
and seals the stream, moves files and talks to the hub.

Imports ``sync_protocol``, ``conflict`` and the edge's store; never ``cloud_hub``.
"""
