"""chartsync's entry points: the `chartsync` command and the demo.

The only package that imports both `edge_node` and `cloud_hub`; neither of
those imports the other.
"""
