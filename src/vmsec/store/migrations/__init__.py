"""Alembic migrations of the findings store, applied by :func:`vmsec.store.open_store`."""

# The newest migration shipped in versions/ (a test keeps the two in step). A store already at this
# revision is written and read without importing alembic (a third of a second every scan would pay).
HEAD_REVISION = "0007"
