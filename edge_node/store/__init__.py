"""The edge's SQLite store: every edge table and every SQL statement.

Other folders ask for typed operations; only this folder opens connections.

    schema.py      SCHEMA_VERSION, numbered migrations, refusing newer files untouched
    site.py        the site's id and keys (sealed under site.key)
    users.py       staff accounts and hashed tokens
    apply.py       one change → rows (shared by local writes and remote applies)
    writer.py      the group-commit writer (resources, history, outbox, audit in one tx)
    connection.py  the write connection on its own thread; a command's connection
    boot.py        what the writer needs to start (next seq, last HLC, audit chain)
    reads.py       read, vread, history, search, audit queries
    audit.py       the hash-chained audit log
    check.py       `edge check`
    backup.py      `edge backup`
    snapshot_records.py   what a snapshot holds (meta, resource, history, conflict, batch)
    snapshot_position.py  the sync tables a snapshot carries or checks (cursor, chains, acks)
    snapshot_export.py    consistent copy of the live database → snapshot records
    snapshot_staging.py   the resumable staging file a restore loads records into
    snapshot_install.py   staging file → data directory (rename) or live database (swap)
"""
