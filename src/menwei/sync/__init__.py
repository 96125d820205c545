"""Sync between gate laptops and the community server.

`protocol` is the wire format, `client` the gate side (enroll, push, pull, export), `server` the
community server (FastAPI app and its storage), `status` what the gate app's status bar shows.
"""
