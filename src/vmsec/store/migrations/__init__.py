"""Alembic migrations of the findings store, applied by :func:`vmsec.store.open_store`."""
