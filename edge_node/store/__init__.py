"""The edge's SQLite store: every edge table and every SQL statement of the edge.

Other folders ask for typed operations: writes through the writer (`LedgerOp`s for
the sync tables, `store.ledger`), reads as functions taking the connection first.

    schema.py          SCHEMA_VERSION, numbered migrations, refusing newer files untouched
    site.py            the site's id and keys (sealed under site.key)
    users.py           staff accounts and hashed tokens
    account_events.py  account changes chained into the audit log
    apply.py           one change → rows (shared by local writes and remote applies)
    writer.py          the group-commit writer (resources, history, outbox, audit in one tx)
    local_write.py     the rows of one local write; audit records of a request
    group_rows.py      one group's rows written in one transaction
    recent_states.py   the writer's memory of recently committed states
    connection.py      the write connection on its own thread; read connections
    transaction.py     write transactions and savepoints
    reads.py           read, vread, history, search, audit queries
    conflict_review.py open conflicts with their resources; who wrote a dot (history)
    audit.py           the hash-chained audit log
    data_lock.py       one process per data directory
    sync_state.py      the hub, credential, keyring, cursor, log id and digest row
    ledger.py          LedgerOp; the outbox, own sealed batches, dead letters
    received.py        origin chains, received copies, held batches
    relay_queue.py     other sites' batches queued for a hub that lost them
    rewind.py          going back to an earlier hub position (RewindTo)
    practice_sites.py  the practice's sites as last seen at the hub
    guard_counts.py    the blast-radius guard's counters and the admin's decision
    sync_counts.py     the sync bookkeeping the status page and heartbeat show
    boot.py            what the writer needs to start (next seq, last HLC, audit chain)
    snapshot_records.py   what a snapshot holds (meta, resource, history, conflict, batch)
    snapshot_position.py  the sync tables a snapshot carries or checks (cursor, chains, acks)
    snapshot_export.py    consistent copy of the live database → snapshot records
    snapshot_staging.py   the resumable staging file a restore loads records into
    snapshot_install.py   staging file → data directory (rename) or live database (swap)
    durable_files.py   fsync of a file or a directory entry (renames that survive a crash)
    file_modes.py      the data directory 0700, every file in it 0600
    check.py           `edge check`
    backup.py          `edge backup`: online copy, streamed out encrypted (or plaintext)
    backup_install.py  `edge restore --from-backup`: decrypt, check, install in one rename
"""
