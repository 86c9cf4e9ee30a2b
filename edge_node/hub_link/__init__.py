"""The edge's link to its hub: client and its typed answers, errors, sync settings, link
status, shared context.

Both `snapshots/` and `sync/` talk to the hub through this package, so neither imports
the other.  It sits above `node` (it holds the running edge) and below them.
"""
