"""Schedules: notebook runs on a cron, with the index the scheduler's tick reads due ones by.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False, server_default=""),
        sa.Column("cron", sa.String(255), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("overlap", sa.String(8), nullable=False, server_default="skip"),
        sa.Column("missed", sa.String(8), nullable=False, server_default="skip"),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("source_kind", sa.String(8), nullable=False),
        sa.Column("path", sa.Text, nullable=True),
        sa.Column("input_hash", sa.String(64), nullable=True),
        sa.Column("input_kind", sa.String(8), nullable=False),
        sa.Column("input_name", sa.String(255), nullable=False, server_default=""),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("requested", sa.JSON, nullable=False),
        sa.Column("output_formats", sa.JSON, nullable=False),
        sa.Column("callback_url", sa.Text, nullable=True),
        sa.Column("notify", sa.String(16), nullable=False, server_default="never"),
        sa.Column("next_run", sa.DateTime, nullable=True),
        sa.Column("last_fire", sa.DateTime, nullable=True),
        sa.Column("pending_job", sa.String(32), nullable=True),
        sa.Column("skipped", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_skip", sa.DateTime, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("updated", sa.DateTime, nullable=False),
    )
    op.create_index("ix_schedules_user", "schedules", ["user"])
    op.create_index("ix_schedules_due", "schedules", ["paused", "next_run"])


def downgrade():
    op.drop_table("schedules")
