"""The jobs table.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("input_kind", sa.String(8), nullable=False),
        sa.Column("input_name", sa.String(255), nullable=False),
        sa.Column("path", sa.Text, nullable=True),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("output_formats", sa.JSON, nullable=False),
        sa.Column("callback_url", sa.Text, nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("schedule_id", sa.String(32), nullable=True),
        sa.Column("rerun_of", sa.String(32), nullable=True),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("requested", sa.JSON, nullable=False),
        sa.Column("predicted", sa.JSON, nullable=False),
        sa.Column("allocated", sa.JSON, nullable=False),
        sa.Column("used", sa.JSON, nullable=False),
        sa.Column("cells_done", sa.Integer, nullable=False),
        sa.Column("cells_total", sa.Integer, nullable=True),
        sa.Column("error_reason", sa.String(32), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("error_cell", sa.Integer, nullable=True),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("backend", sa.String(32), nullable=True),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("started", sa.DateTime, nullable=True),
        sa.Column("finished", sa.DateTime, nullable=True),
        sa.Column("created_ts", sa.Float, nullable=False),
        sa.UniqueConstraint("user", "idempotency_key", name="uq_jobs_user_idempotency_key"),
    )
    op.create_index("ix_jobs_user", "jobs", ["user"])
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_schedule_id", "jobs", ["schedule_id"])
    op.create_index("ix_jobs_created_ts", "jobs", ["created_ts"])
    op.create_index("ix_jobs_user_created", "jobs", ["user", "created_ts", "id"])
    op.create_index("ix_jobs_status_created", "jobs", ["status", "created_ts"])


def downgrade():
    op.drop_table("jobs")
