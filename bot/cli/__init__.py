"""Every ``atiende`` command: one module per command group (``app`` is the root)."""
