"""The hub's HTTP API (aiohttp, versioned under /v1); `app.build_app` assembles it."""
