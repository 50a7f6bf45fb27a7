"""Per-process wiring: small builders per area, composed into the ``Runtime`` of a
process; each process (API, worker, each CLI command) builds only what it uses.

- ``core``: settings, database pools, Redis, metrics, clock (every process);
- ``media``, ``channels``, ``conversation``, ``answering``, ``staff``, ``campaigns``,
  ``sequences``: one builder per area;
- ``runtime``: ``Runtime.create`` composes them for the server and the worker.
"""
