"""The clinic's edge node: SQLite replica, FHIR API for the clinic's PCs, outbox and sync loop.

Imports ``sync_protocol`` and ``conflict``; never ``cloud_hub`` (see STYLE.md, rule 1).
"""
