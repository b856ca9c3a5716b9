"""Each user's schedule count, the row a create takes (UPDATE … WHERE n < limit) so the per-user limit holds
under concurrent creates; filled in from the schedules already kept.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    counts = op.create_table(
        "schedule_counts",
        sa.Column("user", sa.String(255), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False, server_default="0"),
    )
    schedules = sa.table("schedules", sa.column("user", sa.String))
    op.execute(counts.insert().from_select(
        ["user", "n"], sa.select(schedules.c.user, sa.func.count()).group_by(schedules.c.user)))


def downgrade():
    op.drop_table("schedule_counts")
