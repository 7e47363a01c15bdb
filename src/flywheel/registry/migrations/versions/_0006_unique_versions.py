"""Schema version 6: one row per (project, model name, version), so two writers saving the same
model at once cannot both register the same version number (the second is refused and retries)."""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    duplicated = bind.execute(
        sa.text(
            "SELECT project, name, version FROM models GROUP BY project, name, version HAVING COUNT(*) > 1"
        )
    ).first()
    if duplicated is not None:  # an old race left two rows of one version: keep them, renumber nothing
        raise RuntimeError(
            f"models: version {duplicated[2]} of {duplicated[0]}/{duplicated[1]} is registered twice; "
            "delete one of the two rows, then open the store again"
        )
    if not any(i["name"] == "ux_models_version" for i in sa.inspect(bind).get_indexes("models")):
        op.create_index("ux_models_version", "models", ["project", "name", "version"], unique=True)
    op.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
