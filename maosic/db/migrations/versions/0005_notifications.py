"""Notifications: whether the owner wants e-mail, and the owner's webhook URL.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("notify_email", sa.Boolean(), nullable=True, server_default=sa.true())
        )
        batch.add_column(sa.Column("webhook_url", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("webhook_url")
        batch.drop_column("notify_email")
