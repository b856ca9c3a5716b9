"""Settings of this deployment kept in its own database: its instance id.

A database that already holds jobs was made by a service that labelled its
containers with the old fixed instance name "default": it keeps that name, so the
containers of its running jobs are still found (and reattached) after the upgrade.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    settings = op.create_table(
        "settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    if op.get_bind().execute(sa.text("SELECT 1 FROM jobs LIMIT 1")).first():
        op.bulk_insert(settings, [{"key": "instance_id", "value": "default"}])


def downgrade():
    op.drop_table("settings")
