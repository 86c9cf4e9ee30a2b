"""The edge's SQLite store: schema, the one writer, reads, audit chain, check, backup.

    schema.py      SCHEMA_VERSION, numbered migrations, refusing newer files untouched
    site.py        the site's id and keys (sealed under site.key)
    users.py       staff accounts and hashed tokens
    apply.py       one change → rows (shared by local writes and, later, remote applies)
    writer.py      the group-commit writer (resources, history, outbox, audit in one tx)
    connection.py  the write connection on its own thread
    reads.py       read, vread, history, search, audit queries
    audit.py       the hash-chained audit log
    check.py       `edge check`
    backup.py      `edge backup`
"""
