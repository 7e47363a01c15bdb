"""Schema version 5: each saved artifact's SHA-256, checked before it is loaded."""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A store that reached version 3 after this column existed got it with its models table.
    if not any(c["name"] == "sha256" for c in sa.inspect(op.get_bind()).get_columns("models")):
        op.add_column("models", sa.Column("sha256", sa.String(64)))
    op.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
