"""The clinic's edge node: SQLite replica, FHIR API for the clinic's PCs, outbox and sync loop.

    node.py     Edge.open (store + writer + reader), init_data_dir
    config.py   EdgeConfig and its pure parser
    errors.py   the edge's error tree (status codes, OperationOutcome codes)
    store/      SQLite: schema, group-commit writer, reads, audit chain, check, backup
    fhir/       validation, search parameters and tokens, bundles, outcome, capability,
                Provenance and AuditEvent builders
    api/        the aiohttp application: /fhir, /audit, /status, auth, access log
    cli/        `chartsync edge init | serve | user add | backup | check`

Imports ``sync_protocol`` and ``conflict``; never ``cloud_hub`` (see STYLE.md, rule 1).
"""
