"""The edge's side of sync: enrollment, pusher, puller, blast-radius guard, the sync loop.

The hub itself is reached through `edge_node.hub_link`; tables through `edge_node.store`.
"""
