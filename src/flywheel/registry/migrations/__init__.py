"""The store's schema migrations (Alembic): one revision per schema version, applied in one transaction.

They run from :func:`flywheel.registry._schema.prepare_schema` on the connection it opened; there is
no ``alembic.ini``. Revision ``000N`` brings a store to schema version N and writes N into the
``meta`` table too, which is what a flywheel from before Alembic reads to refuse a newer store.
"""
