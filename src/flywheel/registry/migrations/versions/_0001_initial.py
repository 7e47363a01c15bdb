"""Schema version 1: the run history (runs, their evaluations and scores) and the meta table."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meta", sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text, nullable=False)
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project", sa.String(64), nullable=False, index=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("flywheel_version", sa.String(32), nullable=False),
        sa.Column("data_fingerprint", sa.String(32), nullable=False, index=True),
        sa.Column("split_fingerprint", sa.String(32), nullable=False),
        sa.Column("objective_version", sa.String(32), nullable=False),
        sa.Column("optimize_metric", sa.String(64), nullable=False),
        sa.Column("best_model", sa.String(64)),
        sa.Column("best_value", sa.Float),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("report_path", sa.Text),
        sa.Column("result_json", sa.Text, nullable=False),
    )
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id", sa.String(40), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("data_fingerprint", sa.String(32), nullable=False),
        sa.Column("split_fingerprint", sa.String(32), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("notes_json", sa.Text, nullable=False),
    )
    op.create_table(
        "scores",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "evaluation_id",
            sa.Integer,
            sa.ForeignKey("evaluations.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("split", sa.String(16), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("lower", sa.Float),
        sa.Column("upper", sa.Float),
    )
    op.execute("INSERT INTO meta(key, value) VALUES ('schema_version', '1')")
