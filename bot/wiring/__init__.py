"""Per-process wiring: small builders per area, composed into the ``Runtime`` of a
process; each process (API, worker, each CLI command) builds only what it uses."""
