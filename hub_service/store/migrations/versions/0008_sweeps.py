"""Parameter sweeps: one row per sweep (its grid, as submitted), each job says the sweep it is a run of, and
a schedule says whether each of its fires is a sweep (its parameters then hold lists of values).

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False, server_default=""),
        sa.Column("grid", sa.JSON, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("schedule_id", sa.String(32), nullable=True),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("created_ts", sa.Float, nullable=False),
        sa.UniqueConstraint("user", "idempotency_key", name="uq_sweeps_user_idempotency_key"),
    )
    op.create_index("ix_sweeps_user_created", "sweeps", ["user", "created_ts", "id"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("sweep_id", sa.String(32), nullable=True))
        batch.create_index("ix_jobs_sweep_id", ["sweep_id"])
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(sa.Column("sweep", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade():
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("sweep")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_sweep_id")
        batch.drop_column("sweep_id")
    op.drop_index("ix_sweeps_user_created", table_name="sweeps")
    op.drop_table("sweeps")
