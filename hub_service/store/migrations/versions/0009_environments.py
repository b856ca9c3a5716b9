"""Environments: the one a job and a schedule run in, and the record of a job's environment build (the
requirements it brought, the derived image, how long the build took, its size, whether it was cached).

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("environment", sa.String(64), nullable=True))
        batch.add_column(sa.Column("build", sa.JSON, nullable=True))
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(sa.Column("environment", sa.String(64), nullable=True))


def downgrade():
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("environment")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("build")
        batch.drop_column("environment")
