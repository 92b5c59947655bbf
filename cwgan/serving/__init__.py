"""The HTTP server behind `python -m cwgan.serve`: the ASGI app, request checking, its page,
and the load test's library."""
