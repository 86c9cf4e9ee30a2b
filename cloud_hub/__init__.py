"""The cloud hub: orders, stores and fans out sealed change batches it cannot read.

Imports ``sync_protocol`` only; never ``edge_node`` or ``conflict`` (docs/design.md, "Layering").
"""
