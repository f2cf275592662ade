"""One lab, one driver: the lease fence of a claim, failure kinds and who sent a command.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(
            sa.Column("n_lab_failures", sa.Integer(), nullable=True, server_default="0")
        )
        batch.add_column(sa.Column("lease_lab", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("lease_epoch", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("failure_kind", sa.String(length=16), nullable=True))
    with op.batch_alter_table("hardware_commands") as batch:
        batch.add_column(sa.Column("actor", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("lease_epoch", sa.BigInteger(), nullable=True))
        batch.create_index("ix_hardware_commands_actor", ["actor"])


def downgrade() -> None:
    with op.batch_alter_table("hardware_commands") as batch:
        batch.drop_index("ix_hardware_commands_actor")
        batch.drop_column("lease_epoch")
        batch.drop_column("actor")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("failure_kind")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("lease_epoch")
        batch.drop_column("lease_lab")
        batch.drop_column("n_lab_failures")
