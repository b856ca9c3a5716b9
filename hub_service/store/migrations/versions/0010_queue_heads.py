"""The queue's heads read from an index: a dispatch pass walks each user's queued jobs in the order of
(status, user, created_ts, id) up to the first that fits, instead of reading every queued job's allocation.

Revision ID: 0010
Revises: 0009
"""
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_jobs_status_user_created", "jobs", ["status", "user", "created_ts", "id"])


def downgrade():
    op.drop_index("ix_jobs_status_user_created", table_name="jobs")
