"""Requests shared read-only with colleagues.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_shares",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("requests.id"), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("request_id", "user_id", name="uq_request_share"),
    )
    op.create_index("ix_request_shares_request_id", "request_shares", ["request_id"])
    op.create_index("ix_request_shares_user_id", "request_shares", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_request_shares_user_id", table_name="request_shares")
    op.drop_index("ix_request_shares_request_id", table_name="request_shares")
    op.drop_table("request_shares")
