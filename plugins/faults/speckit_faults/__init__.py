"""speckit_faults: deterministic fault injection through the real retry path.

The entry point is :mod:`speckit_faults.plugin`; :mod:`speckit_faults.spec` parses
the ``CODEX_FAULTS*`` environment variables and :mod:`speckit_faults.injector` holds
the counters.
"""
