"""Alembic environment: vmsec runs migrations programmatically on a connection it passes in
(``config.attributes["connection"]``); there is no alembic.ini."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from vmsec.store.schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("vmsec migrations run through vmsec.store.open_store (no connection given)")
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
