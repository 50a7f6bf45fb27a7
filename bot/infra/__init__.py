"""Backing services and the single adapters of their vendor libraries: Redis
(memory, events, rate limits), procrastinate jobs, the embedded PostgreSQL and Redis,
the event loop (uvloop), backup and restore."""
