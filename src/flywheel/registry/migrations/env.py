"""Alembic's environment: migrate on the connection (and inside the transaction) the caller opened."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
