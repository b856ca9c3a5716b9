"""What a running notebook reports: each job's metric series (one row a point) and the last value of each
metric on the job.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "job_metrics",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("time", sa.Float, nullable=False),
    )
    op.create_index("ix_job_metrics_series", "job_metrics", ["job_id", "name", "step"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("metrics", sa.JSON, nullable=True))


def downgrade():
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("metrics")
    op.drop_index("ix_job_metrics_series", table_name="job_metrics")
    op.drop_table("job_metrics")
