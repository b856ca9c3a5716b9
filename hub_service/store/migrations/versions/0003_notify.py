"""Each job says when its owner wants mail about it: never, on failure, or whenever it ends.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("notify", sa.String(16), nullable=False, server_default="never"))


def downgrade():
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("notify")
