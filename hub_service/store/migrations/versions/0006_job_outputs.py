"""Each job says who cancelled it and whether it left an output notebook (recorded when it ends, so
that a listing needs no look at the disk).

Jobs that ended before this revision get ``has_output`` by the rule the pages used to guess with: a
job that succeeded or failed after it started has one (a cancelled one was shown none).

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("cancelled_by", sa.String(255), nullable=True))
        batch.add_column(sa.Column("has_output", sa.Boolean, nullable=False, server_default=sa.false()))
    jobs = sa.table("jobs", sa.column("status", sa.String), sa.column("started", sa.DateTime),
                    sa.column("input_hash", sa.String), sa.column("has_output", sa.Boolean))
    op.execute(jobs.update()
               .where(jobs.c.status.in_(["succeeded", "failed"]), jobs.c.started.isnot(None),
                      jobs.c.input_hash != "")
               .values(has_output=True))


def downgrade():
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("has_output")
        batch.drop_column("cancelled_by")
