"""Snapshots, bootstrap and restore (issue #5): a site's charts as one sealed, streamed file.

    records.py      what a snapshot holds (meta, resource, history, conflict records)
    export.py       consistent copy (online backup) → sealed snapshot file
    position.py     the sync tables a snapshot carries or checks (cursor, chains, acks)
    staging.py      snapshot file → private staging SQLite file, resumable, verified
    install.py      staging → the data directory (rename) or the live database (swap)
    bootstrap.py    download the latest snapshot from the hub, stage, install
    rebootstrap.py  a running site the hub's log no longer covers: snapshot + own changes
    snapshotter.py  the periodic upload inside `edge serve` (`snapshot_every_changes`)
    progress.py     rich bar with time left, or JSON lines
    errors.py       SnapshotError ─ SnapshotRefused, NoSnapshot, SnapshotDeferred,
                    RestoreBlocked

Imports ``sync_protocol``, ``conflict`` and the edge's store; never ``cloud_hub``.
"""
