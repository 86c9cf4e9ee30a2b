"""The wire protocol shared by edge and hub: models, clock, keys, sealing, framing.

Sans-I/O: turns objects into bytes and back, seals and opens, steps state.
The edge and the hub own sockets and files.  See PROTOCOL.md.
"""
