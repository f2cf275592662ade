"""Record why a campaign stopped and how long the hardware took per experiment.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("stop_reason", sa.String(length=255), nullable=True))
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("lab_time_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("lab_time_s")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("stop_reason")
