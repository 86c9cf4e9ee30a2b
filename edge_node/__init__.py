"""The clinic's edge node: SQLite replica, FHIR API for the clinic's PCs, outbox and sync loop.

One straight stack, lowest first; each part imports only those below it
(`tests/test_layering.py` holds the same list and enforces it):

    errors.py   the edge's error tree (status codes, OperationOutcome codes)
    config.py   EdgeConfig and its pure parser
    fhir/       validation, search parameters and tokens, bundles, outcome, capability,
                Provenance and AuditEvent builders, the write requests the API makes
    store/      SQLite: every edge table and every SQL statement, the group-commit writer
    node.py     Edge.open (store + writer + reader), init_data_dir
    hub_link/   the link to the hub: client, errors, sync settings, link status, context
    snapshots/  sealed snapshots: export, upload, bootstrap, re-bootstrap
    sync/       enrollment, pusher, puller, guard, the sync loop
    api/        the aiohttp application: /fhir, /audit, /status, auth, access log
    cli/        `chartsync edge init | serve | user | backup | check | ...`

Imports ``sync_protocol`` and ``conflict``; never ``cloud_hub``.
"""
